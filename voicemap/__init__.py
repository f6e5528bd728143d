"""voicemap: a self-hostable voice map of child-friendly venues."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

from .version import __version__  # noqa: F401 (the package's public version)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then VOICEMAP_* environment variables, then ``config``."""
    from flask import Flask

    from . import config as settings
    from . import db, errors, http, i18n, limits, metrics, storage
    from .http import (
        activities,
        api,
        clips,
        info,
        judging,
        manage,
        manage_activities,  # noqa: F401 (adds its routes to manage.bp)
        manage_judging,  # noqa: F401 (adds its routes to manage.bp)
        manage_works,  # noqa: F401 (adds its routes to manage.bp)
        ogc,
        pages,
        tiles,
        works,
    )
    from .resources import STATIC_DIR, TEMPLATES_DIR

    # Templates and static files: web/ in a checkout, voicemap/web once installed.
    app = Flask(__name__, instance_relative_config=True,
                template_folder=str(TEMPLATES_DIR), static_folder=str(STATIC_DIR))
    app.config.from_mapping(settings.defaults(app.instance_path))
    app.config.from_prefixed_env("VOICEMAP")
    if config:
        app.config.from_mapping(config)
    settings.finish(app.config, app.instance_path)
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    db.init_app(app)
    errors.init_app(app)
    metrics.init_app(app)
    limits.init_app(app)
    storage.init_app(app)
    http.init_app(app)
    i18n.init_app(app, pages.page_lang)  # Flask-Babel, in the page's language
    app.register_blueprint(api.bp)
    app.register_blueprint(clips.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(activities.bp)
    app.register_blueprint(info.bp)
    app.register_blueprint(works.bp)
    app.register_blueprint(judging.bp)
    app.register_blueprint(ogc.bp)
    return app
