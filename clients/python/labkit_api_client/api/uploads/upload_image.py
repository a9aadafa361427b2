from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.image_upload import ImageUpload
from ...models.problem import Problem
from ...models.upload_accepted import UploadAccepted
from ...types import Response


def _get_kwargs(
    *,
    body: ImageUpload,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/images",
    }

    _kwargs["files"] = body.to_multipart()

    headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | UploadAccepted | None:
    if response.status_code == 202:
        response_202 = UploadAccepted.from_dict(response.json())

        return response_202

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | UploadAccepted]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: ImageUpload,
) -> Response[Problem | UploadAccepted]:
    """Upload

     Multipart ``file`` (the image), optional ``labels`` and optional ``tasks``.

    ``labels``: your own candidates, comma- or newline-separated. ``tasks``: the models to run,
    repeated or comma-separated; all enabled ones when absent.

    Everything that needs no body is checked before a byte of it is read: origin, token,
    backlog (429) and declared size (413).

    Args:
        body (ImageUpload):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | UploadAccepted]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: ImageUpload,
) -> Problem | UploadAccepted | None:
    """Upload

     Multipart ``file`` (the image), optional ``labels`` and optional ``tasks``.

    ``labels``: your own candidates, comma- or newline-separated. ``tasks``: the models to run,
    repeated or comma-separated; all enabled ones when absent.

    Everything that needs no body is checked before a byte of it is read: origin, token,
    backlog (429) and declared size (413).

    Args:
        body (ImageUpload):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | UploadAccepted
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: ImageUpload,
) -> Response[Problem | UploadAccepted]:
    """Upload

     Multipart ``file`` (the image), optional ``labels`` and optional ``tasks``.

    ``labels``: your own candidates, comma- or newline-separated. ``tasks``: the models to run,
    repeated or comma-separated; all enabled ones when absent.

    Everything that needs no body is checked before a byte of it is read: origin, token,
    backlog (429) and declared size (413).

    Args:
        body (ImageUpload):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | UploadAccepted]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: ImageUpload,
) -> Problem | UploadAccepted | None:
    """Upload

     Multipart ``file`` (the image), optional ``labels`` and optional ``tasks``.

    ``labels``: your own candidates, comma- or newline-separated. ``tasks``: the models to run,
    repeated or comma-separated; all enabled ones when absent.

    Everything that needs no body is checked before a byte of it is read: origin, token,
    backlog (429) and declared size (413).

    Args:
        body (ImageUpload):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | UploadAccepted
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
