"""Row ids as input: a database integer key is 1 to 2**31 - 1; anything else is refused as
bad input, never passed to the database (where it would not fit)."""

from typing import Annotated, Final

from pydantic import Field

MAX_ROW_ID: Final = 2**31 - 1

RowNumber = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
