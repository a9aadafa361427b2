from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.task_result_status import TaskResultStatus, check_task_result_status
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.label_score import LabelScore
    from ..models.task_result_answer_type_0 import TaskResultAnswerType0
    from ..models.task_shown import TaskShown
    from ..models.text_line import TextLine
    from ..models.timings import Timings


T = TypeVar("T", bound="TaskResult")


@_attrs_define
class TaskResult:
    """One task's result as the API shows it (the result record's fields), or ``{"status": "processing"}``.

    Attributes:
        status (TaskResultStatus):
        schema (int | None | Unset): the result's wire-format major version
        request_id (None | str | Unset):
        task (None | str | Unset):
        answer (None | TaskResultAnswerType0 | Unset): the task's answer, in the task's own model
        model (None | str | Unset):
        error (None | str | Unset):
        timings_ms (None | Timings | Unset):
        batch_size (int | None | Unset):
        processor (None | str | Unset):
        partition (int | None | Unset):
        offset (int | None | Unset):
        produced_at_ms (int | None | Unset):
        labels (list[LabelScore] | None | Unset): deprecated since 1.3 (CLIP's answer.labels)
        text (None | str | Unset): deprecated since 1.3 (OCR's answer.text)
        lines (list[TextLine] | None | Unset): deprecated since 1.3 (OCR's answer.lines)
        id (None | str | Unset): deprecated since 1.3: `request_id` under its old name
        shown (None | TaskShown | Unset):
    """

    status: TaskResultStatus
    schema: int | None | Unset = UNSET
    request_id: None | str | Unset = UNSET
    task: None | str | Unset = UNSET
    answer: None | TaskResultAnswerType0 | Unset = UNSET
    model: None | str | Unset = UNSET
    error: None | str | Unset = UNSET
    timings_ms: None | Timings | Unset = UNSET
    batch_size: int | None | Unset = UNSET
    processor: None | str | Unset = UNSET
    partition: int | None | Unset = UNSET
    offset: int | None | Unset = UNSET
    produced_at_ms: int | None | Unset = UNSET
    labels: list[LabelScore] | None | Unset = UNSET
    text: None | str | Unset = UNSET
    lines: list[TextLine] | None | Unset = UNSET
    id: None | str | Unset = UNSET
    shown: None | TaskShown | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.task_result_answer_type_0 import TaskResultAnswerType0  # noqa: PLC0415
        from ..models.task_shown import TaskShown  # noqa: PLC0415
        from ..models.timings import Timings  # noqa: PLC0415

        status: str = self.status

        schema: int | None | Unset
        if isinstance(self.schema, Unset):
            schema = UNSET
        else:
            schema = self.schema

        request_id: None | str | Unset
        if isinstance(self.request_id, Unset):
            request_id = UNSET
        else:
            request_id = self.request_id

        task: None | str | Unset
        if isinstance(self.task, Unset):
            task = UNSET
        else:
            task = self.task

        answer: dict[str, Any] | None | Unset
        if isinstance(self.answer, Unset):
            answer = UNSET
        elif isinstance(self.answer, TaskResultAnswerType0):
            answer = self.answer.to_dict()
        else:
            answer = self.answer

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        error: None | str | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        else:
            error = self.error

        timings_ms: dict[str, Any] | None | Unset
        if isinstance(self.timings_ms, Unset):
            timings_ms = UNSET
        elif isinstance(self.timings_ms, Timings):
            timings_ms = self.timings_ms.to_dict()
        else:
            timings_ms = self.timings_ms

        batch_size: int | None | Unset
        if isinstance(self.batch_size, Unset):
            batch_size = UNSET
        else:
            batch_size = self.batch_size

        processor: None | str | Unset
        if isinstance(self.processor, Unset):
            processor = UNSET
        else:
            processor = self.processor

        partition: int | None | Unset
        if isinstance(self.partition, Unset):
            partition = UNSET
        else:
            partition = self.partition

        offset: int | None | Unset
        if isinstance(self.offset, Unset):
            offset = UNSET
        else:
            offset = self.offset

        produced_at_ms: int | None | Unset
        if isinstance(self.produced_at_ms, Unset):
            produced_at_ms = UNSET
        else:
            produced_at_ms = self.produced_at_ms

        labels: list[dict[str, Any]] | None | Unset
        if isinstance(self.labels, Unset):
            labels = UNSET
        elif isinstance(self.labels, list):
            labels = []
            for labels_type_0_item_data in self.labels:
                labels_type_0_item = labels_type_0_item_data.to_dict()
                labels.append(labels_type_0_item)

        else:
            labels = self.labels

        text: None | str | Unset
        if isinstance(self.text, Unset):
            text = UNSET
        else:
            text = self.text

        lines: list[dict[str, Any]] | None | Unset
        if isinstance(self.lines, Unset):
            lines = UNSET
        elif isinstance(self.lines, list):
            lines = []
            for lines_type_0_item_data in self.lines:
                lines_type_0_item = lines_type_0_item_data.to_dict()
                lines.append(lines_type_0_item)

        else:
            lines = self.lines

        id: None | str | Unset
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id

        shown: dict[str, Any] | None | Unset
        if isinstance(self.shown, Unset):
            shown = UNSET
        elif isinstance(self.shown, TaskShown):
            shown = self.shown.to_dict()
        else:
            shown = self.shown

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "status": status,
            }
        )
        if schema is not UNSET:
            field_dict["schema"] = schema
        if request_id is not UNSET:
            field_dict["request_id"] = request_id
        if task is not UNSET:
            field_dict["task"] = task
        if answer is not UNSET:
            field_dict["answer"] = answer
        if model is not UNSET:
            field_dict["model"] = model
        if error is not UNSET:
            field_dict["error"] = error
        if timings_ms is not UNSET:
            field_dict["timings_ms"] = timings_ms
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if processor is not UNSET:
            field_dict["processor"] = processor
        if partition is not UNSET:
            field_dict["partition"] = partition
        if offset is not UNSET:
            field_dict["offset"] = offset
        if produced_at_ms is not UNSET:
            field_dict["produced_at_ms"] = produced_at_ms
        if labels is not UNSET:
            field_dict["labels"] = labels
        if text is not UNSET:
            field_dict["text"] = text
        if lines is not UNSET:
            field_dict["lines"] = lines
        if id is not UNSET:
            field_dict["id"] = id
        if shown is not UNSET:
            field_dict["shown"] = shown

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.label_score import LabelScore  # noqa: PLC0415
        from ..models.task_result_answer_type_0 import TaskResultAnswerType0  # noqa: PLC0415
        from ..models.task_shown import TaskShown  # noqa: PLC0415
        from ..models.text_line import TextLine  # noqa: PLC0415
        from ..models.timings import Timings  # noqa: PLC0415

        d = dict(src_dict)
        status = check_task_result_status(d.pop("status"))

        def _parse_schema(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        schema = _parse_schema(d.pop("schema", UNSET))

        def _parse_request_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        request_id = _parse_request_id(d.pop("request_id", UNSET))

        def _parse_task(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        task = _parse_task(d.pop("task", UNSET))

        def _parse_answer(data: object) -> None | TaskResultAnswerType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                answer_type_0 = TaskResultAnswerType0.from_dict(data)

                return answer_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskResultAnswerType0 | Unset, data)

        answer = _parse_answer(d.pop("answer", UNSET))

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        def _parse_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_timings_ms(data: object) -> None | Timings | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                timings_ms_type_0 = Timings.from_dict(data)

                return timings_ms_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Timings | Unset, data)

        timings_ms = _parse_timings_ms(d.pop("timings_ms", UNSET))

        def _parse_batch_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        batch_size = _parse_batch_size(d.pop("batch_size", UNSET))

        def _parse_processor(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        processor = _parse_processor(d.pop("processor", UNSET))

        def _parse_partition(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        partition = _parse_partition(d.pop("partition", UNSET))

        def _parse_offset(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        offset = _parse_offset(d.pop("offset", UNSET))

        def _parse_produced_at_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        produced_at_ms = _parse_produced_at_ms(d.pop("produced_at_ms", UNSET))

        def _parse_labels(data: object) -> list[LabelScore] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                labels_type_0 = []
                _labels_type_0 = data
                for labels_type_0_item_data in _labels_type_0:
                    labels_type_0_item = LabelScore.from_dict(labels_type_0_item_data)

                    labels_type_0.append(labels_type_0_item)

                return labels_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[LabelScore] | None | Unset, data)

        labels = _parse_labels(d.pop("labels", UNSET))

        def _parse_text(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        text = _parse_text(d.pop("text", UNSET))

        def _parse_lines(data: object) -> list[TextLine] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                lines_type_0 = []
                _lines_type_0 = data
                for lines_type_0_item_data in _lines_type_0:
                    lines_type_0_item = TextLine.from_dict(lines_type_0_item_data)

                    lines_type_0.append(lines_type_0_item)

                return lines_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[TextLine] | None | Unset, data)

        lines = _parse_lines(d.pop("lines", UNSET))

        def _parse_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        id = _parse_id(d.pop("id", UNSET))

        def _parse_shown(data: object) -> None | TaskShown | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                shown_type_0 = TaskShown.from_dict(data)

                return shown_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskShown | Unset, data)

        shown = _parse_shown(d.pop("shown", UNSET))

        task_result = cls(
            status=status,
            schema=schema,
            request_id=request_id,
            task=task,
            answer=answer,
            model=model,
            error=error,
            timings_ms=timings_ms,
            batch_size=batch_size,
            processor=processor,
            partition=partition,
            offset=offset,
            produced_at_ms=produced_at_ms,
            labels=labels,
            text=text,
            lines=lines,
            id=id,
            shown=shown,
        )

        return task_result
