"""The staff checkout console: server-rendered pages at /admin for cashiers (sign in, look up, earn and burn)."""

from admin.app import create_console

__all__ = ["create_console"]
