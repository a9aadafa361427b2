from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.get_asyncapi_response_get_asyncapi import GetAsyncapiResponseGetAsyncapi
from ...types import Response


def _get_kwargs() -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/asyncapi.json",
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> GetAsyncapiResponseGetAsyncapi | None:
    if response.status_code == 200:
        response_200 = GetAsyncapiResponseGetAsyncapi.from_dict(response.json())

        return response_200

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[GetAsyncapiResponseGetAsyncapi]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
) -> Response[GetAsyncapiResponseGetAsyncapi]:
    """The AsyncAPI 3 document: the WebSocket /ws and the Kafka topics

     The AsyncAPI 3.0.0 document of `WS /ws` (subscribe, result, error) and of the Kafka topics.

    Each record's key, headers and value, its schema version, and which service sends or
    receives it in which consumer group; topic names as this app's settings name them.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GetAsyncapiResponseGetAsyncapi]
    """

    kwargs = _get_kwargs()

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
) -> GetAsyncapiResponseGetAsyncapi | None:
    """The AsyncAPI 3 document: the WebSocket /ws and the Kafka topics

     The AsyncAPI 3.0.0 document of `WS /ws` (subscribe, result, error) and of the Kafka topics.

    Each record's key, headers and value, its schema version, and which service sends or
    receives it in which consumer group; topic names as this app's settings name them.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GetAsyncapiResponseGetAsyncapi
    """

    return sync_detailed(
        client=client,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
) -> Response[GetAsyncapiResponseGetAsyncapi]:
    """The AsyncAPI 3 document: the WebSocket /ws and the Kafka topics

     The AsyncAPI 3.0.0 document of `WS /ws` (subscribe, result, error) and of the Kafka topics.

    Each record's key, headers and value, its schema version, and which service sends or
    receives it in which consumer group; topic names as this app's settings name them.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GetAsyncapiResponseGetAsyncapi]
    """

    kwargs = _get_kwargs()

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
) -> GetAsyncapiResponseGetAsyncapi | None:
    """The AsyncAPI 3 document: the WebSocket /ws and the Kafka topics

     The AsyncAPI 3.0.0 document of `WS /ws` (subscribe, result, error) and of the Kafka topics.

    Each record's key, headers and value, its schema version, and which service sends or
    receives it in which consumer group; topic names as this app's settings name them.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GetAsyncapiResponseGetAsyncapi
    """

    return (
        await asyncio_detailed(
            client=client,
        )
    ).parsed
