"""Checks that the suite's real components (see ``components.py``) actually work."""

from __future__ import annotations

import socket
import subprocess

import pytest
import requests

pytestmark = pytest.mark.integration


def test_registry_answers_v2(registry) -> None:
    with requests.Session() as http:
        http.trust_env = False
        response = http.get(f"{registry.url}/v2/", timeout=5)
        catalog = http.get(f"{registry.url}/v2/_catalog", timeout=5)
    assert response.status_code == 200
    assert response.headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    assert isinstance(catalog.json()["repositories"], list)
    assert registry.host == f"127.0.0.1:{registry.port}"


def test_docker_engine_pings(docker_client) -> None:
    assert docker_client.ping() is True
    assert docker_client.version()["ApiVersion"]


def test_unreachable_registry_refuses_connections(unreachable_registry) -> None:
    host, port = unreachable_registry.rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), timeout=2):
        pass


def test_git_bare_repo_factory_commits_and_pushes(git_bare_repo_factory, tmp_path) -> None:
    source = tmp_path / "svc"
    source.mkdir()
    (source / "build.gradle").write_text("// empty\n")
    repo = git_bare_repo_factory(source, author_name="Ada", author_email="ada@example.com", message="init")
    first = repo.head()
    second = repo.commit({"src/App.java": "class App {}\n"}, "add app", author_email="bob@example.com")
    assert second != first

    def git(*args: str) -> str:
        env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
        done = subprocess.run(["git", *args], cwd=repo.bare_path, env=env, check=True, capture_output=True, text=True)
        return done.stdout

    assert git("rev-parse", "master").strip() == second
    assert git("log", "--format=%ae %s", "master").splitlines() == ["bob@example.com add app", "ada@example.com init"]
    assert git("show", f"{second}:src/App.java") == "class App {}\n"
    assert "build.gradle" in git("ls-tree", "--name-only", first)


def test_engine_pushes_to_registry(docker_client, registry, tmp_path) -> None:
    """The two components work together: an image built here lands in the registry."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (tmp_path / "hello.txt").write_text("hello\n")
    repository = f"{registry.host}/components-check"
    image, _ = docker_client.images.build(path=str(tmp_path), tag=f"{repository}:1", rm=True)
    try:
        for line in docker_client.images.push(repository, tag="1", stream=True, decode=True):
            assert "error" not in line, line
        with requests.Session() as http:
            http.trust_env = False
            tags = http.get(f"{registry.url}/v2/components-check/tags/list", timeout=5).json()
        assert tags == {"name": "components-check", "tags": ["1"]}
    finally:
        docker_client.images.remove(image.id, force=True)
