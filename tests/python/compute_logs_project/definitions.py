"""A job whose steps print, run through the `dagster` CLI with a compute log manager
configured in `$DAGSTER_HOME/dagster.yaml`: `chatty` prints to stdout and stderr and then
waits, so partial uploads can be seen while it runs; `flaky` fails its first attempt and
succeeds on the retry, each attempt in a process of its own.
"""

import os
import sys
import time
from pathlib import Path

from dagster import Definitions, RetryPolicy, job, op


@op
def chatty() -> None:
    print(f"out: {os.environ['DRS_LOG_MARKER']}", flush=True)
    print(f"err: {os.environ['DRS_LOG_MARKER']}", file=sys.stderr, flush=True)
    # Held until the test has seen the partial upload (or gives up), then one more line.
    release = Path(os.environ["DRS_LOG_RELEASE"])
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    print("out: after the partial upload", flush=True)


@op(retry_policy=RetryPolicy(max_retries=1))
def flaky(context) -> None:
    attempt = context.retry_number + 1
    print(f"attempt {attempt}", flush=True)
    if attempt == 1:
        raise RuntimeError("the first attempt fails")


@job
def logs_job() -> None:
    chatty()
    flaky()


defs = Definitions(jobs=[logs_job])
