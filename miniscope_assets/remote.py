"""A running Dagster webserver, driven over HTTP to register sessions and launch a backfill.

Dagster has no command line for asset backfills; the UI launches them through the GraphQL
mutation `launchPartitionBackfill`, and so does this. Partitions are added with
`addDynamicPartition`, and the raw folder state is reported through the webserver's
`/report_asset_materialization/` endpoint (GraphQL's report mutation carries no metadata).
The conversion choices travel as the backfill's `runConfigData`, which Dagster 1.13 gives to
every run of an asset backfill (dagster PR #31229); its UI has no field for it yet.
"""

from __future__ import annotations

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

    def _mutate(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        answer = self._post("/graphql", {"query": query, "variables": variables})
        if answer.get("errors"):
            raise ServerError(str(answer["errors"])[:500])
        (result,) = answer["data"].values()
        if "message" in result:
            raise ServerError(f"{result['__typename']}: {result['message']}")
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
