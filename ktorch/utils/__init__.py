"""Utilities: seeding, custom-object scopes, summaries."""

from ktorch.saving.object_registration import CustomObjectScope, custom_object_scope
from ktorch.utils.random import set_random_seed

__all__ = ["CustomObjectScope", "custom_object_scope", "set_random_seed"]
