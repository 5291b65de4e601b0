"""The images `lab up` keeps or removes: a base another checkout still builds on stays."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from lab.engine import base_image
from lab.progress import silent

REPOSITORY = "socklab-test-base"  # never the real bases: other checkouts may use them
TAGS = [f"{REPOSITORY}:{name}" for name in ("new", "named", "stale")]
NAMER = "socklab-test-base-user:latest"


def _image(client: docker.DockerClient, tag: str, labels: dict[str, str]) -> None:
    text = "FROM scratch\n" + "".join(f'LABEL {k}="{v}"\n' for k, v in labels.items())
    client.images.build(fileobj=io.BytesIO(text.encode()), tag=tag, rm=True)


@pytest.fixture
def images(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:
    for i, tag in enumerate(TAGS):
        _image(docker_client, tag, {"socklab-test": "1", "n": str(i)})  # three distinct ids
    _image(docker_client, NAMER, {base_image.BASE_LABEL: TAGS[1], "socklab-test": "1"})
    yield docker_client
    for tag in [*TAGS, NAMER]:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)


def test_a_stale_base_goes_but_one_an_image_names_stays(images: docker.DockerClient) -> None:
    base_image.remove_stale_local_bases(
        images, keep=TAGS[0], progress=silent, repository=REPOSITORY
    )
    left = {t for image in images.images.list(name=REPOSITORY) for t in image.tags}
    assert left == {TAGS[0], TAGS[1]}  # kept; named by NAMER's socklab.base label; gone
