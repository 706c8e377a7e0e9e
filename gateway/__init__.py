"""harvestkit.gateway: an OpenAI-compatible HTTP endpoint in front of the harvested sessions.

``async with serve(port=0) as url:`` then ``openai.AsyncOpenAI(base_url=url + "/v1", ...)``;
or ``create_app()`` for an aiohttp application to run or embed. Needs the ``gateway`` extra.
"""

from .app import create_app
from .errors import GatewayError
from .server import InsecureBind, check_bind, is_loopback, serve

__all__ = ["GatewayError", "InsecureBind", "check_bind", "create_app", "is_loopback", "serve"]
