//! Keeps the tree honest: crate layering, documented crates, and no leftover
//! debugging or unfinished markers. Runs with `cargo test --workspace`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use store_backends::registry::{self, OptionType};

/// Our crates each crate depends on (normal `[dependencies]`; dev-dependencies
/// are free). Layers only depend downwards: store-core <- store-backends;
/// serializers and asset-paths stand alone; io-manager composes store-core,
/// serializers and asset-paths; py-bindings sits on top of everything.
const LAYERS: &[(&str, Layer)] = &[
    ("store-core", Layer::Exactly(&[])),
    ("store-backends", Layer::Exactly(&["store-core"])),
    ("serializers", Layer::Exactly(&[])),
    ("asset-paths", Layer::Exactly(&[])),
    ("io-manager", Layer::SubsetOf(&["store-core", "serializers", "asset-paths"])),
    ("py-bindings", Layer::Any),
];

/// How a crate may depend on our other crates.
enum Layer {
    Exactly(&'static [&'static str]),
    SubsetOf(&'static [&'static str]),
    Any,
}

const LAYERING: &str = "layers depend downwards: store-core <- store-backends; \
    store-core, serializers, asset-paths <- io-manager <- py-bindings";

/// Unfinished or debugging code; split so that this file does not trip its own check.
const BANNED: &[&str] = &[
    concat!("todo", "!("),
    concat!("unimplemented", "!("),
    concat!("dbg", "!("),
    concat!("TO", "DO"),
    concat!("FIX", "ME"),
    concat!("XX", "X"),
];

#[test]
fn crates_depend_only_on_lower_layers() {
    let ours = crate_names();
    let mut problems = Vec::new();
    for name in &ours {
        let Some((_, layer)) = LAYERS.iter().find(|(layer, _)| layer == name) else {
            problems.push(format!("crates/{name} is not in LAYERS of xtask/tests/tidy.rs: add it"));
            continue;
        };
        let manifest = read(&root().join("crates").join(name).join("Cargo.toml"));
        let deps: Vec<String> = normal_dependencies(&manifest).into_iter().filter(|dep| ours.contains(dep)).collect();
        let (allowed, required): (&[&str], &[&str]) = match layer {
            Layer::Exactly(exact) => (exact, exact),
            Layer::SubsetOf(allowed) => (allowed, &[]),
            Layer::Any => continue,
        };
        for dep in deps.iter().filter(|dep| !allowed.contains(&dep.as_str())) {
            problems.push(format!("crates/{name} must not depend on {dep} ({LAYERING})"));
        }
        for dep in required.iter().filter(|dep| !deps.iter().any(|d| d == *dep)) {
            problems.push(format!("crates/{name} should depend on {dep} ({LAYERING})"));
        }
    }
    assert_no_problems(problems);
}

/// Within a crate, top-level modules import each other one way, so each can be read (and changed) knowing
/// only those below it. A name that `lib.rs` re-exports counts as its module's; unit tests are left out.
#[test]
fn modules_import_each_other_one_way() {
    let mut problems = Vec::new();
    for name in crate_names() {
        let graph = module_graph(&root().join("crates").join(&name).join("src"));
        if let Some(cycle) = find_cycle(&graph) {
            problems.push(format!("crates/{name}: modules import each other: {}", cycle.join(" -> ")));
        }
    }
    assert_no_problems(problems);
}

type ModuleGraph = BTreeMap<String, BTreeSet<String>>;

/// Each top-level module of the crate in `src` (`x.rs`, or `x/` with its submodules) and the modules it uses.
fn module_graph(src: &Path) -> ModuleGraph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |path: &Path| {
        let first = path.strip_prefix(src).expect("below src").components().next().expect("a file");
        first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned()
    };
    let modules: BTreeSet<String> =
        files.iter().map(|file| module_of(file)).filter(|m| m != "lib" && m != "main").collect();
    let mut reexported = BTreeMap::new();
    let lib = read(&src.join("lib.rs"));
    for statement in lib.split("pub use ").skip(1).map(|rest| rest.split(';').next().unwrap_or_default()) {
        let Some((module, names)) = statement.split_once("::") else { continue };
        if modules.contains(module.trim()) {
            for name in names.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|n| !n.is_empty()) {
                reexported.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    let mut graph = ModuleGraph::new();
    for file in &files {
        let module = module_of(file);
        if !modules.contains(&module) {
            continue;
        }
        let text = read(file);
        let code: String = (text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default().lines())
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        // `super::` reaches the crate root only from a file directly in src.
        let roots: &[&str] = if file.parent() == Some(src) { &["crate::", "super::"] } else { &["crate::"] };
        let used = graph.entry(module.clone()).or_default();
        for root in roots {
            for after in code.split(root).skip(1) {
                for name in first_names(after) {
                    let target = if modules.contains(&name) { Some(&name) } else { reexported.get(&name) };
                    used.extend(target.filter(|t| **t != module).cloned());
                }
            }
        }
    }
    graph
}

/// The names a path continues with after `crate::`: one, or each of a `{a::b, c}` group.
fn first_names(after: &str) -> Vec<String> {
    let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let Some(group) = after.strip_prefix('{') else { return vec![ident(after)] };
    let (mut depth, mut names, mut start) = (0, Vec::new(), 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    names
}

/// A cycle in `graph`, as the modules along it with the first repeated at the end.
fn find_cycle(graph: &ModuleGraph) -> Option<Vec<String>> {
    fn visit<'a>(
        graph: &'a ModuleGraph,
        module: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            return Some(path[at..].iter().chain([&module]).map(|m| (*m).to_owned()).collect());
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        let found = graph.get(module).into_iter().flatten().find_map(|next| visit(graph, next, path, done));
        path.pop();
        found
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

/// The backend options the Python stubs and the Dagster guide list are those of the registry's spec
/// (`store_backends::registry::backend_options`), which the constructors and config files accept.
#[test]
fn backend_options_are_listed_as_the_spec_defines_them() {
    let stub_path = "crates/py-bindings/python/dagster_remote_store/_core.pyi";
    let (stub, guide) = (read(&root().join(stub_path)), read(&root().join("docs/dagster.md")));
    let mut problems = Vec::new();
    for backend in registry::all_backend_options() {
        let class = match backend.kind {
            "gcs" => "GCSBackend".to_owned(),
            "sftp" => "SFTPBackend".to_owned(),
            kind => format!("{}{}Backend", kind[..1].to_uppercase(), &kind[1..]),
        };
        let new = stub_constructor(backend);
        let defined =
            stub.split(&format!("\nclass {class}(Backend):\n")).nth(1).and_then(|body| body.split("\nclass ").next());
        if !defined.is_some_and(|body| body.contains(&new)) {
            problems.push(format!("{stub_path}: class {class} should declare\n{new}"));
        }
        let row = format!("| `{}` | {} |", backend.kind, guide_options(backend));
        if !guide.contains(&row) {
            problems.push(format!("docs/dagster.md: the options table should have the row\n{row}"));
        }
    }
    assert_no_problems(problems);
}

/// The `__new__` a stub declares for the options of `backend`.
fn stub_constructor(backend: &registry::BackendOptions) -> String {
    let keywords: Vec<_> = backend.options().filter(|option| option.alias_of.is_none()).collect();
    if keywords.is_empty() {
        return "    def __new__(cls) -> Self: ...".to_owned();
    }
    let mut lines = vec!["    def __new__(".to_owned(), "        cls,".to_owned()];
    for (index, option) in keywords.iter().enumerate() {
        let python = match option.kind {
            OptionType::Text => "str",
            OptionType::Path => "str | PathLike[str]",
            OptionType::Flag => "bool",
            OptionType::Count => "int",
            OptionType::Seconds => "float",
        };
        let declared = match (option.required, option.kind) {
            (true, _) => format!("{}: {python},", option.name),
            (false, OptionType::Flag) => format!("{}: {python} = False,", option.name),
            (false, _) => format!("{}: {python} | None = None,", option.name),
        };
        lines.push(format!("        {declared}"));
        if index == 0 && backend.positional().is_some() && keywords.len() > 1 {
            lines.push("        *,".to_owned());
        }
    }
    lines.push("    ) -> Self: ...".to_owned());
    lines.join("\n")
}

/// The options cell of the guide's table: the options of the backend type alone (the HTTP ones the
/// cloud types share are listed below the table), without remote-store's aliases, the required in bold.
fn guide_options(backend: &registry::BackendOptions) -> String {
    let own: Vec<String> = (backend.specific())
        .filter(|option| option.alias_of.is_none())
        .map(|option| if option.required { format!("**`{}`**", option.name) } else { format!("`{}`", option.name) })
        .collect();
    if own.is_empty() { "none".to_owned() } else { own.join(", ") }
}

#[test]
fn library_crates_are_documented_with_examples() {
    let mut problems = Vec::new();
    for name in crate_names().iter().filter(|name| *name != "py-bindings") {
        let lib = root().join("crates").join(name).join("src/lib.rs");
        let Ok(text) = fs::read_to_string(&lib) else {
            problems.push(format!("crates/{name} has no src/lib.rs"));
            continue;
        };
        if !text.contains("#![deny(missing_docs)]") {
            problems.push(format!("crates/{name}/src/lib.rs lacks #![deny(missing_docs)]"));
        }
        let has_example =
            text.lines().map(str::trim_start).any(|l| l.starts_with("//! ```") || l.starts_with("/// ```"));
        if !has_example {
            problems.push(format!("crates/{name}/src/lib.rs has no code example (a //! ``` or /// ``` block)"));
        }
    }
    assert_no_problems(problems);
}

#[test]
fn crates_have_descriptions() {
    let problems = crate_names()
        .into_iter()
        .filter(|name| {
            let manifest = read(&root().join("crates").join(name).join("Cargo.toml"));
            !manifest.lines().any(|l| l.trim_start().starts_with("description = "))
        })
        .map(|name| format!("crates/{name}/Cargo.toml has no `description = ` line"))
        .collect();
    assert_no_problems(problems);
}

/// The category slugs crates.io accepts (its src/boot/categories.toml); it ignores any other, with a warning only.
const CATEGORY_SLUGS: &[&str] = &[
    "algorithms",
    "api-bindings",
    "asynchronous",
    "authentication",
    "caching",
    "command-line-interface",
    "command-line-utilities",
    "compression",
    "computer-vision",
    "concurrency",
    "config",
    "cryptography",
    "cryptography::cryptocurrencies",
    "data-structures",
    "database",
    "database-implementations",
    "date-and-time",
    "development-tools",
    "development-tools::build-utils",
    "development-tools::cargo-plugins",
    "development-tools::debugging",
    "development-tools::ffi",
    "development-tools::procedural-macro-helpers",
    "development-tools::profiling",
    "development-tools::testing",
    "email",
    "embedded",
    "emulators",
    "encoding",
    "external-ffi-bindings",
    "filesystem",
    "game-development",
    "game-engines",
    "games",
    "graphics",
    "gui",
    "hardware-support",
    "internationalization",
    "localization",
    "mathematics",
    "memory-management",
    "multimedia",
    "multimedia::audio",
    "multimedia::encoding",
    "multimedia::images",
    "multimedia::video",
    "network-programming",
    "no-std",
    "no-std::no-alloc",
    "os",
    "os::android-apis",
    "os::freebsd-apis",
    "os::linux-apis",
    "os::macos-apis",
    "os::unix-apis",
    "os::windows-apis",
    "parser-implementations",
    "parsing",
    "rendering",
    "rendering::data-formats",
    "rendering::engine",
    "rendering::graphics-api",
    "rust-patterns",
    "science",
    "science::bioinformatics",
    "science::geo",
    "science::neuroscience",
    "science::robotics",
    "simulation",
    "template-engine",
    "text-editors",
    "text-processing",
    "value-formatting",
    "visualization",
    "wasm",
    "web-programming",
    "web-programming::http-client",
    "web-programming::http-server",
    "web-programming::websocket",
];

/// Every crate that is published (not `publish = false`) carries what crates.io and docs.rs show: `cargo publish`
/// itself needs only a description and a license, so the rest could go missing unnoticed until the crate's page
/// lacked it. `cargo xtask publish-check` builds the packages; this only reads the manifests.
#[test]
fn crate_manifests_have_crates_io_metadata() {
    let mut problems = Vec::new();
    for dir in crate_names() {
        let folder = root().join("crates").join(&dir);
        let manifest = read(&folder.join("Cargo.toml"));
        let package = section(&manifest, "package");
        if field(&package, "publish").is_some_and(|value| value == "false") {
            continue;
        }
        let mut problem = |what: String| problems.push(format!("crates/{dir}/Cargo.toml: {what}"));
        let name = field(&package, "name").unwrap_or_default().trim_matches('"').to_owned();
        for key in ["description", "license", "repository", "rust-version", "readme", "documentation"] {
            if field(&package, key).is_none() {
                problem(format!("[package] has no `{key}`"));
            }
        }
        if let Some(readme) = field(&package, "readme").filter(|value| value.starts_with('"')) {
            if !folder.join(readme.trim_matches('"')).is_file() {
                problem(format!("readme = {readme}, but crates/{dir} has no such file"));
            }
        }
        let docs_rs = format!("\"https://docs.rs/{name}\"");
        if field(&package, "documentation").is_some_and(|value| value != docs_rs) {
            problem(format!("documentation should be {docs_rs}"));
        }
        match field(&package, "keywords").map(|value| list(&value)) {
            None => problem("[package] has no `keywords`".to_owned()),
            Some(keywords) => {
                let valid = |k: &String| {
                    k.len() <= 20
                        && k.starts_with(|c: char| c.is_ascii_alphabetic())
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                };
                if keywords.is_empty() || keywords.len() > 5 {
                    problem(format!("keywords: crates.io takes 1 to 5, not {}", keywords.len()));
                }
                for keyword in keywords.iter().filter(|k| !valid(k)) {
                    problem(format!("keyword {keyword:?}: at most 20 ASCII letters, digits, - or _, a letter first"));
                }
            }
        }
        match field(&package, "categories").map(|value| list(&value)) {
            None => problem("[package] has no `categories`".to_owned()),
            Some(categories) => {
                if categories.is_empty() || categories.len() > 5 {
                    problem(format!("categories: crates.io takes 1 to 5, not {}", categories.len()));
                }
                for category in categories.iter().filter(|c| !CATEGORY_SLUGS.contains(&c.as_str())) {
                    problem(format!("category {category:?} is not a crates.io slug (see CATEGORY_SLUGS)"));
                }
            }
        }
        // docs.rs builds with the default features unless told otherwise: the modules behind the others would
        // be missing from the crate's documentation.
        let has_features = section(&manifest, "features").iter().any(|line| !line.starts_with('#'));
        let docs_rs_config = section(&manifest, "package.metadata.docs.rs");
        if has_features && field(&docs_rs_config, "all-features").as_deref() != Some("true") {
            problem("has [features] but no [package.metadata.docs.rs] all-features = true".to_owned());
        }
        // Apache-2.0 asks that copies carry the license: the root LICENSE, linked into each crate's package.
        if !folder.join("LICENSE").is_file() {
            problem(format!("crates/{dir}/LICENSE is missing: link it to the root one (ln -s ../../LICENSE)"));
        }
    }
    assert_no_problems(problems);
}

/// The non-empty lines of the manifest table `[name]`, trimmed.
fn section(manifest: &str, name: &str) -> Vec<String> {
    let header = format!("[{name}]");
    let mut lines = manifest.lines().map(str::trim).skip_while(|line| *line != header).skip(1);
    let mut found = Vec::new();
    for line in lines.by_ref().take_while(|line| !line.starts_with('[')) {
        if !line.is_empty() {
            found.push(line.to_owned());
        }
    }
    found
}

/// The value of `key = value` (or `"workspace"` for `key.workspace = true`) in a table's lines; a value that
/// spans several lines (a list) is joined up to its closing bracket.
fn field(lines: &[String], key: &str) -> Option<String> {
    let at = lines.iter().position(|line| {
        line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('=') || rest == ".workspace = true")
    })?;
    let (_, value) = lines[at].split_once('=').expect("a key = value line");
    if lines[at].starts_with(&format!("{key}.workspace")) {
        return Some("workspace".to_owned());
    }
    let mut value = value.trim().to_owned();
    if value.starts_with('[') {
        for line in &lines[at + 1..] {
            if value.contains(']') {
                break;
            }
            value.push_str(line);
        }
    }
    Some(value)
}

/// The strings of a TOML list of strings such as `["a", "b"]`.
fn list(value: &str) -> Vec<String> {
    let inner = value.trim().trim_start_matches('[').split(']').next().unwrap_or_default();
    inner.split(',').map(|item| item.trim().trim_matches('"').to_owned()).filter(|item| !item.is_empty()).collect()
}

#[test]
fn no_unfinished_or_debugging_code() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        for (number, line) in read(&file).lines().enumerate() {
            if let Some(found) = BANNED.iter().find(|banned| line.contains(*banned)) {
                let path = file.strip_prefix(root()).unwrap_or(&file).display();
                problems.push(format!("{path}:{}: contains {found}", number + 1));
            }
        }
    }
    assert_no_problems(problems);
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo")
}

/// Names of the crate folders under crates/, sorted for stable messages.
fn crate_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("crates"))
        .expect("crates/ exists")
        .map(|entry| entry.expect("readable crates/"))
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Dependency names from `[dependencies]`, `[dependencies.NAME]` and
/// `[target.'…'.dependencies]`; a line scan is enough for our manifests.
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let mut deps = Vec::new();
    let mut in_section = false;
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = header == "dependencies" || header.ends_with(".dependencies");
            if let Some(name) = header.strip_prefix("dependencies.") {
                deps.push(name.trim().to_owned());
                in_section = false;
            }
        } else if in_section && !line.is_empty() && !line.starts_with('#') {
            // `name = …` or `name.workspace = true`
            let name = line.split(['=', '.']).next().unwrap_or_default();
            deps.push(name.trim().trim_matches('"').to_owned());
        }
    }
    deps
}

/// Every `.rs` file below `dir`, skipping build output and hidden folders.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, files);
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn assert_no_problems(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn code_is_formatted() {
    // The workspace, and the benchmark's S3 server and the DataFusion example, workspaces of their own.
    for manifest in ["Cargo.toml", "benches/s3-server/Cargo.toml", "examples/datafusion-sftp/Cargo.toml"] {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["fmt", "--all", "--manifest-path", manifest, "--", "--check"])
            .current_dir(root())
            .status()
            .expect("run cargo fmt");
        assert!(
            status.success(),
            "{manifest} is not rustfmt-formatted: run `cargo fmt --all --manifest-path {manifest}`"
        );
    }
}
