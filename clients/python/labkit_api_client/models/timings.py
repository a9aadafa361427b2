from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Timings")


@_attrs_define
class Timings:
    """Where the time went, in milliseconds.

    Attributes:
        queued (float | Unset): sent → a processor fetched it (waiting in Kafka) Default: 0.0.
        batch_wait (float | Unset): fetched → its batch's forward pass began, less its own decode (the cost of batching)
            Default: 0.0.
        decode (float | Unset): image bytes → pixels → model input Default: 0.0.
        inference (float | Unset): this image's share of its batch's model run (CLIP forward pass, OCR) Default: 0.0.
        total (float | Unset): sent → result produced Default: 0.0.
    """

    queued: float | Unset = 0.0
    batch_wait: float | Unset = 0.0
    decode: float | Unset = 0.0
    inference: float | Unset = 0.0
    total: float | Unset = 0.0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        queued = self.queued

        batch_wait = self.batch_wait

        decode = self.decode

        inference = self.inference

        total = self.total

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if queued is not UNSET:
            field_dict["queued"] = queued
        if batch_wait is not UNSET:
            field_dict["batch_wait"] = batch_wait
        if decode is not UNSET:
            field_dict["decode"] = decode
        if inference is not UNSET:
            field_dict["inference"] = inference
        if total is not UNSET:
            field_dict["total"] = total

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        queued = d.pop("queued", UNSET)

        batch_wait = d.pop("batch_wait", UNSET)

        decode = d.pop("decode", UNSET)

        inference = d.pop("inference", UNSET)

        total = d.pop("total", UNSET)

        timings = cls(
            queued=queued,
            batch_wait=batch_wait,
            decode=decode,
            inference=inference,
            total=total,
        )

        timings.additional_properties = d
        return timings

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
