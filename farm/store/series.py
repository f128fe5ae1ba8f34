# SPDX-License-Identifier: Apache-2.0
"""Tables for patch series: what came in by mail and where it was applied."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from farm.store.base import Base, utcnow


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    total: Mapped[int]
    base_commit: Mapped[str | None] = mapped_column(String(64))
    cover_message_id: Mapped[str | None] = mapped_column(Text)
    change_id: Mapped[str | None] = mapped_column(Text)
    prerequisite_patch_ids: Mapped[list[str]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(Text, doc="where the mbox was read from")
    content_hash: Mapped[str] = mapped_column(
        String(64), unique=True, index=True, doc="its identity: version and patch-ids"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    patches: Mapped[list[Patch]] = relationship(
        back_populates="series", order_by="Patch.index", cascade="all, delete-orphan"
    )
    applications: Mapped[list[Application]] = relationship(
        back_populates="series", cascade="all, delete-orphan"
    )


class Patch(Base):
    __tablename__ = "patches"
    __table_args__ = (UniqueConstraint("series_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    index: Mapped[int]
    subject: Mapped[str] = mapped_column(Text, doc="without the [PATCH ...] prefix")
    full_subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[list[str]] = mapped_column(default=list)
    author: Mapped[str] = mapped_column(Text)
    date: Mapped[str | None] = mapped_column(Text)
    to: Mapped[list[str]] = mapped_column(default=list)
    cc: Mapped[list[str]] = mapped_column(default=list)
    patch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    files: Mapped[list[str]] = mapped_column(default=list, doc="paths the diff touches")
    trailers: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, doc="trailers given in replies: name, value, message_id"
    )
    raw: Mapped[bytes] = mapped_column(LargeBinary, doc="the message exactly as received")

    series: Mapped[Series] = relationship(back_populates="patches")


class Application(Base):
    """A series applied with git am onto a base in a farm-owned worktree."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    tree: Mapped[str] = mapped_column(Text, doc="path of the git repository")
    base_commit: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str] = mapped_column(Text)
    worktree: Mapped[str | None] = mapped_column(Text, doc="farm-owned checkout of the branch")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="applications")
    commits: Mapped[list[AppliedCommit]] = relationship(
        order_by="AppliedCommit.index", cascade="all, delete-orphan"
    )

    def commit_for(self, upto: int) -> str:
        """The commit with the applied patches up to number ``upto`` (0 is the base)."""
        if upto == 0:
            return self.base_commit
        for commit in self.commits:
            if commit.index == upto:
                return commit.sha
        raise KeyError(upto)


class AppliedCommit(Base):
    __tablename__ = "applied_commits"
    __table_args__ = (UniqueConstraint("application_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    index: Mapped[int]
    sha: Mapped[str] = mapped_column(String(64))
