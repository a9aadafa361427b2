from typing import Literal

ImageStatusStatus = Literal["done", "error", "processing"]

IMAGE_STATUS_STATUS_VALUES: set[ImageStatusStatus] = {
    "done",
    "error",
    "processing",
}


def check_image_status_status(value: str) -> ImageStatusStatus:
    if value in IMAGE_STATUS_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {IMAGE_STATUS_STATUS_VALUES!r}")
