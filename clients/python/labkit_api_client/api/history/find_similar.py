from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.similar import Similar
from ...types import UNSET, Response, Unset


def _get_kwargs(
    request_id: str,
    *,
    limit: int | Unset = 12,
    min_score: float | Unset = -1.0,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["min_score"] = min_score

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/images/{request_id}/similar".format(
            request_id=quote(str(request_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Similar | None:
    if response.status_code == 200:
        response_200 = Similar.from_dict(response.json())

        return response_200

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Similar]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    request_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 12,
    min_score: float | Unset = -1.0,
) -> Response[Problem | Similar]:
    """Similar To

     The stored images nearest to this one (itself left out).

    Args:
        request_id (str): the 32 lowercase hex characters an upload's `202` answered as
            `request_id`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 Default: -1.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Similar]
    """

    kwargs = _get_kwargs(
        request_id=request_id,
        limit=limit,
        min_score=min_score,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    request_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 12,
    min_score: float | Unset = -1.0,
) -> Problem | Similar | None:
    """Similar To

     The stored images nearest to this one (itself left out).

    Args:
        request_id (str): the 32 lowercase hex characters an upload's `202` answered as
            `request_id`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 Default: -1.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Similar
    """

    return sync_detailed(
        request_id=request_id,
        client=client,
        limit=limit,
        min_score=min_score,
    ).parsed


async def asyncio_detailed(
    request_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 12,
    min_score: float | Unset = -1.0,
) -> Response[Problem | Similar]:
    """Similar To

     The stored images nearest to this one (itself left out).

    Args:
        request_id (str): the 32 lowercase hex characters an upload's `202` answered as
            `request_id`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 Default: -1.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Similar]
    """

    kwargs = _get_kwargs(
        request_id=request_id,
        limit=limit,
        min_score=min_score,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    request_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 12,
    min_score: float | Unset = -1.0,
) -> Problem | Similar | None:
    """Similar To

     The stored images nearest to this one (itself left out).

    Args:
        request_id (str): the 32 lowercase hex characters an upload's `202` answered as
            `request_id`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 Default: -1.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Similar
    """

    return (
        await asyncio_detailed(
            request_id=request_id,
            client=client,
            limit=limit,
            min_score=min_score,
        )
    ).parsed
