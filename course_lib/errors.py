"""One exception type for user mistakes: its message is one line that names the fix."""


class CourseError(Exception):
    """A bad setting or missing input. ``str(err)`` is the whole message for the user."""
