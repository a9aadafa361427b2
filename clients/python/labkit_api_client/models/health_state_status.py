from typing import Literal

HealthStateStatus = Literal["ok", "unhealthy"]

HEALTH_STATE_STATUS_VALUES: set[HealthStateStatus] = {
    "ok",
    "unhealthy",
}


def check_health_state_status(value: str) -> HealthStateStatus:
    if value in HEALTH_STATE_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {HEALTH_STATE_STATUS_VALUES!r}")
