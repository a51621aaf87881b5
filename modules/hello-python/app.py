"""The smallest Python guest: proves that componentize-py builds a component."""

import wit_world


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        return f"hello, {name}, from python"
