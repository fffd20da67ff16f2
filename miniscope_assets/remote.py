"""A running Dagster webserver, driven over HTTP to register sessions and launch a backfill.

Dagster has no command line for asset backfills; the UI launches them through the GraphQL
mutation `launchPartitionBackfill`, and so does this. Partitions are added with
`addDynamicPartition`, and the raw folder state is reported through the webserver's
`/report_asset_materialization/` endpoint (GraphQL's report mutation carries no metadata).
The conversion choices travel as the backfill's `runConfigData`, which Dagster 1.13 gives to
every run of an asset backfill (dagster PR #31229); its UI has no field for it yet. Waiting for a
backfill reads its status and its runs (tagged `dagster/backfill`) back the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from .partitions import RAW_SESSION, sessions

_ADD_PARTITION = """
mutation($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on Error { message }
  }
}"""

_REPOSITORIES = """
{ repositoriesOrError { ... on RepositoryConnection {
    nodes { name location { name } jobs { name } } } } }"""

_LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""


_BACKFILL_RUNS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on Error { message }
  }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    __typename
    ... on Runs { results { runId status startTime endTime tags { key value } } }
    ... on Error { message }
  }
}"""

_EVENTS = """
query($id: ID!, $cursor: String) {
  logsForRun(runId: $id, afterCursor: $cursor) {
    __typename
    ... on EventConnection {
      events { ... on MessageEvent { message timestamp stepKey eventType } }
      cursor
      hasMore
    }
    ... on Error { message }
  }
}"""
_STEP_ENDED = {"STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"}

# Backfill statuses after which the daemon launches (and retries) no more runs of it.
BACKFILL_ENDED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
RUN_ENDED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass(frozen=True)
class Run:
    """One run of a backfill, as the webserver reports it."""

    run_id: str
    key: str  # the session's partition key
    status: str  # QUEUED, STARTING, STARTED, SUCCESS, FAILURE, CANCELED, ...
    will_retry: bool  # failed, and the daemon is to retry it
    start: float | None
    end: float | None


class ServerError(RuntimeError):
    """The webserver refused a request; the message is its answer."""


class Server:
    """The code location holding `job` on the webserver at `url` (found by asking it)."""

    def __init__(self, url: str, job: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.selector = self._locate(job)

    def _locate(self, job: str) -> dict[str, str]:
        answer = self._post("/graphql", {"query": _REPOSITORIES})
        for repository in answer["data"]["repositoriesOrError"].get("nodes", []):
            if any(j["name"] == job for j in repository["jobs"]):
                return {
                    "repositoryLocationName": repository["location"]["name"],
                    "repositoryName": repository["name"],
                }
        raise ServerError(f"no code location on {self.url} has the job {job!r}")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.url}{path}", json=body, timeout=self.timeout)
        if response.status_code != 200:
            raise ServerError(f"{path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Each field of the answer; an error (GraphQL's, or a field's Error) raises."""
        answer = self._post("/graphql", {"query": query, "variables": variables})
        if answer.get("errors"):
            raise ServerError(str(answer["errors"])[:500])
        for result in answer["data"].values():
            if "message" in result:
                raise ServerError(f"{result['__typename']}: {result['message']}")
        return answer["data"]

    def _mutate(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        (result,) = self._query(query, variables).values()
        return result

    def add_partition(self, key: str) -> None:
        variables = {"selector": self.selector, "name": sessions.name, "key": key}
        try:
            self._mutate(_ADD_PARTITION, variables)
        except ServerError as error:
            if "DuplicateDynamicPartitionError" not in str(error):
                raise

    def report_raw(
        self, key: str, metadata: dict[str, Any], description: str, data_version: str
    ) -> None:
        """Hand a session over, with the folder state the sensor compares later (data version)."""
        path = f"/report_asset_materialization/{RAW_SESSION.to_user_string()}"
        body = {"partition": key, "metadata": metadata, "description": description}
        self._post(path, {**body, "data_version": data_version})

    def launch_backfill(
        self,
        keys: list[str],
        assets: list[str],
        title: str,
        run_config: dict[str, Any] | None = None,
    ) -> str:
        """One run per session of `assets`, each with `run_config` if given; the backfill id."""
        params: dict[str, Any] = {
            "assetSelection": [{"path": [name]} for name in assets],
            "partitionNames": keys,
            "title": title,
        }
        if run_config:
            params["runConfigData"] = run_config
        return self._mutate(_LAUNCH_BACKFILL, {"params": params})["backfillId"]

    def backfill_runs(self, backfill_id: str) -> tuple[str, list[Run]]:
        """The backfill's status and its runs, newest first."""
        data = self._query(_BACKFILL_RUNS, {"id": backfill_id})
        runs = []
        for run in data["runsOrError"]["results"]:
            tags = {tag["key"]: tag["value"] for tag in run["tags"]}
            key = tags.get("dagster/partition", "?")
            retry = tags.get("dagster/will_retry") == "true"
            runs.append(
                Run(run["runId"], key, run["status"], retry, run["startTime"], run["endTime"])
            )
        return data["partitionBackfillOrError"]["status"], runs

    def steps_in_progress(self, run_id: str) -> list[tuple[str, float]]:
        """(step, time a Celery worker took it) of each step of the run taken and not ended
        (dagster-celery's "Executing steps ... in celery worker" event: before the step's start,
        which a worker killed at once never writes)."""
        taken: dict[str, float] = {}
        cursor = None
        while True:
            variables = {"id": run_id, "cursor": cursor}
            connection = self._query(_EVENTS, variables)["logsForRun"]
            for event in connection["events"]:
                step = event.get("stepKey")
                if not step:
                    continue
                if event["eventType"] == "ENGINE_EVENT" and "in celery worker" in event["message"]:
                    taken[step] = int(event["timestamp"]) / 1000
                elif event["eventType"] in _STEP_ENDED:
                    taken.pop(step, None)
            cursor = connection["cursor"]
            if not connection["hasMore"]:
                return list(taken.items())
