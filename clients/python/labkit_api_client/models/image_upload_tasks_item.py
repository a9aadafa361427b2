from typing import Literal

ImageUploadTasksItem = Literal["clip", "ocr"]

IMAGE_UPLOAD_TASKS_ITEM_VALUES: set[ImageUploadTasksItem] = {
    "clip",
    "ocr",
}


def check_image_upload_tasks_item(value: str) -> ImageUploadTasksItem:
    if value in IMAGE_UPLOAD_TASKS_ITEM_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {IMAGE_UPLOAD_TASKS_ITEM_VALUES!r}")
