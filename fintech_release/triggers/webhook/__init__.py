"""`fintech-release webhook`: the endpoint Bitbucket push events arrive at, launching one CI run per new commit.

Run it next to the Dagster webserver: a push to a service's release branch launches `build_and_push` for
that service's partition, a push to a branch matching `source_control.branch_patterns` launches
`branch_ci` (which run, and its tags, come from `ci_runs.ci_run_for`, as for the commit sensor).

A delivery is answered without asking Dagster: the signature is checked, the body read, the repository's
workspace (Cloud) or project (Server) compared with `source_control.bitbucket.owner`, and the delivery
recorded on disk (store.py); only then is it answered, and its runs are launched in the background
(launcher.py), retried until they launch or a newer head of their branch supersedes them.

| status | when |
| --- | --- |
| 202 `accepted` | recorded; its runs are launched next (`delivery` is the record's id) |
| 202 `ignored` | not a push, unknown repository, unwatched or deleted branch |
| 200 `duplicate` | this exact body was recorded before: nothing is launched again, even if its run was deleted |
| 200 `pong` | Bitbucket Server's test delivery |
| 400 | body not JSON, nested too deep, a documented field missing; a malformed request or Content-Length |
| 401 | `X-Hub-Signature` missing or not the HMAC-SHA256 of the body under the secret (`webhook.secret_env`) |
| 403 | a push from another workspace/project, or from the other Bitbucket flavor, than release.yaml's |
| 408, 411, 413, 431 | the request not read before its deadline; no Content-Length; a body or headers over the limit |
| 503 | too many connections, or the record cannot be written: Bitbucket delivers again |

Modules: events.py (signature, payloads), intake.py (judging and recording one delivery), store.py (the
SQLite record), launcher.py (background launches, the lock per commit, back-off), app.py (Starlette: body,
answer, the log line), server.py (uvicorn: limits, deadline, graceful shutdown, the command).
"""

from fintech_release.triggers.webhook.launcher import Backoff, Launcher
from fintech_release.triggers.webhook.server import Limits, WebhookEndpoint, serve

__all__ = ["Backoff", "Launcher", "Limits", "WebhookEndpoint", "serve"]
