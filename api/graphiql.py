"""GraphiQL without internet: the page and its assets (React, ReactDOM, GraphiQL) come from klubb itself.

The assets are the npm packages pinned in package.json (`make install` runs `npm ci`), served from node_modules/
under /graphiql/; the page references nothing else, so GraphiQL works offline. Only outside production: there the
views render no IDE and `create_app` mounts no asset route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

NODE_MODULES: Final = Path(__file__).resolve().parents[1] / "node_modules"
ASSETS_PATH: Final = "/graphiql"
# name under ASSETS_PATH -> (file in node_modules, content type); nothing else is served
ASSETS: Final = {
    "react.js": ("react/umd/react.production.min.js", "text/javascript"),
    "react-dom.js": ("react-dom/umd/react-dom.production.min.js", "text/javascript"),
    "graphiql.js": ("graphiql/graphiql.min.js", "text/javascript"),
    "graphiql.css": ("graphiql/graphiql.min.css", "text/css"),
}

GRAPHIQL_PAGE: Final = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>klubb GraphiQL</title>
    <link rel="stylesheet" href="{ASSETS_PATH}/graphiql.css">
    <style>body {{ margin: 0; }} #graphiql {{ height: 100vh; }}</style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="{ASSETS_PATH}/react.js"></script>
    <script src="{ASSETS_PATH}/react-dom.js"></script>
    <script src="{ASSETS_PATH}/graphiql.js"></script>
    <script>
      /* The endpoint that served this page (/graphql or /staff/graphql); a bearer token goes in the Headers tab. */
      const fetcher = GraphiQL.createFetcher({{ url: window.location.pathname }});
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{ fetcher, defaultEditorToolsVisibility: true }})
      );
    </script>
  </body>
</html>
"""


async def graphiql_asset(request: Request) -> Response:
    """One of GraphiQL's assets (`/graphiql/{name}`), from the installed npm packages."""
    asset = ASSETS.get(request.path_params["name"])
    if asset is None:
        return PlainTextResponse("not found", status_code=404)
    path, media_type = asset
    if not (NODE_MODULES / path).is_file():
        return PlainTextResponse("GraphiQL's assets are not installed: run `make install` (npm ci)", status_code=404)
    return FileResponse(NODE_MODULES / path, media_type=media_type)
