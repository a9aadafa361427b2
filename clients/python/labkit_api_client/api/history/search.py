from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.search_found import SearchFound
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    q: str,
    limit: int | Unset = 12,
    min_score: float | Unset = 0.2,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["q"] = q

    params["limit"] = limit

    params["min_score"] = min_score

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/search",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | SearchFound | None:
    if response.status_code == 200:
        response_200 = SearchFound.from_dict(response.json())

        return response_200

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | SearchFound]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 12,
    min_score: float | Unset = 0.2,
) -> Response[Problem | SearchFound]:
    """Search

     The images nearest the text (CLIP's text tower) and those whose OCR text matches it.

    Args:
        q (str): 1 to 200 characters of text on one line (no control characters), e.g. `a photo of
            a dog`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 (the images' cut-off) Default:
            0.2.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | SearchFound]
    """

    kwargs = _get_kwargs(
        q=q,
        limit=limit,
        min_score=min_score,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 12,
    min_score: float | Unset = 0.2,
) -> Problem | SearchFound | None:
    """Search

     The images nearest the text (CLIP's text tower) and those whose OCR text matches it.

    Args:
        q (str): 1 to 200 characters of text on one line (no control characters), e.g. `a photo of
            a dog`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 (the images' cut-off) Default:
            0.2.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | SearchFound
    """

    return sync_detailed(
        client=client,
        q=q,
        limit=limit,
        min_score=min_score,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 12,
    min_score: float | Unset = 0.2,
) -> Response[Problem | SearchFound]:
    """Search

     The images nearest the text (CLIP's text tower) and those whose OCR text matches it.

    Args:
        q (str): 1 to 200 characters of text on one line (no control characters), e.g. `a photo of
            a dog`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 (the images' cut-off) Default:
            0.2.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | SearchFound]
    """

    kwargs = _get_kwargs(
        q=q,
        limit=limit,
        min_score=min_score,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 12,
    min_score: float | Unset = 0.2,
) -> Problem | SearchFound | None:
    """Search

     The images nearest the text (CLIP's text tower) and those whose OCR text matches it.

    Args:
        q (str): 1 to 200 characters of text on one line (no control characters), e.g. `a photo of
            a dog`
        limit (int | Unset): a whole number of images, 1 to 100 Default: 12.
        min_score (float | Unset): a cosine similarity from -1 to 1 (the images' cut-off) Default:
            0.2.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | SearchFound
    """

    return (
        await asyncio_detailed(
            client=client,
            q=q,
            limit=limit,
            min_score=min_score,
        )
    ).parsed
