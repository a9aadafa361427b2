from typing import Literal

KeptResultStatus = Literal["done", "error"]

KEPT_RESULT_STATUS_VALUES: set[KeptResultStatus] = {
    "done",
    "error",
}


def check_kept_result_status(value: str) -> KeptResultStatus:
    if value in KEPT_RESULT_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {KEPT_RESULT_STATUS_VALUES!r}")
