"""Contains all the data models used in inputs/outputs"""

from .copies import Copies
from .found_image import FoundImage
from .found_image_tasks import FoundImageTasks
from .get_asyncapi_response_get_asyncapi import GetAsyncapiResponseGetAsyncapi
from .group import Group
from .group_members_type_0 import GroupMembersType0
from .health_state import HealthState
from .health_state_status import HealthStateStatus
from .history_page import HistoryPage
from .image_status import ImageStatus
from .image_status_answer_type_0 import ImageStatusAnswerType0
from .image_status_status import ImageStatusStatus
from .image_status_tasks import ImageStatusTasks
from .image_upload import ImageUpload
from .image_upload_tasks_item import ImageUploadTasksItem
from .kept_result import KeptResult
from .kept_result_status import KeptResultStatus
from .label_score import LabelScore
from .lag import Lag
from .partition_lag import PartitionLag
from .pipeline import Pipeline
from .pipeline_topics import PipelineTopics
from .problem import Problem
from .search_found import SearchFound
from .shown import Shown
from .similar import Similar
from .stored_image import StoredImage
from .stored_image_tasks import StoredImageTasks
from .task_group import TaskGroup
from .task_group_members_type_0 import TaskGroupMembersType0
from .task_look import TaskLook
from .task_result import TaskResult
from .task_result_answer_type_0 import TaskResultAnswerType0
from .task_result_status import TaskResultStatus
from .task_shown import TaskShown
from .tasks import Tasks
from .tasks_shown import TasksShown
from .text_line import TextLine
from .timings import Timings
from .topic_state import TopicState
from .upload_accepted import UploadAccepted

__all__ = (
    "Copies",
    "FoundImage",
    "FoundImageTasks",
    "GetAsyncapiResponseGetAsyncapi",
    "Group",
    "GroupMembersType0",
    "HealthState",
    "HealthStateStatus",
    "HistoryPage",
    "ImageStatus",
    "ImageStatusAnswerType0",
    "ImageStatusStatus",
    "ImageStatusTasks",
    "ImageUpload",
    "ImageUploadTasksItem",
    "KeptResult",
    "KeptResultStatus",
    "LabelScore",
    "Lag",
    "PartitionLag",
    "Pipeline",
    "PipelineTopics",
    "Problem",
    "SearchFound",
    "Shown",
    "Similar",
    "StoredImage",
    "StoredImageTasks",
    "TaskGroup",
    "TaskGroupMembersType0",
    "TaskLook",
    "TaskResult",
    "TaskResultAnswerType0",
    "TaskResultStatus",
    "Tasks",
    "TaskShown",
    "TasksShown",
    "TextLine",
    "Timings",
    "TopicState",
    "UploadAccepted",
)
