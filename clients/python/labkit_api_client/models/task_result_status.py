from typing import Literal

TaskResultStatus = Literal["done", "error", "processing"]

TASK_RESULT_STATUS_VALUES: set[TaskResultStatus] = {
    "done",
    "error",
    "processing",
}


def check_task_result_status(value: str) -> TaskResultStatus:
    if value in TASK_RESULT_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {TASK_RESULT_STATUS_VALUES!r}")
