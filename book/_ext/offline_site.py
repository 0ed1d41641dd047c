"""Sphinx extension: keep the course's site free of anything a browser would fetch from the web.

Jupyter Book always loads sphinx-thebe (live code through Binder). The site has no live-code button, so
thebe's scripts would do nothing but name a CDN (and, added twice on notebook pages, raise a JavaScript
error: "THEBE_JS_URL has already been declared"). This extension unhooks it and leaves its files out.
"""


def _unhook_thebe(app):
    for event, listeners in app.events.listeners.items():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                app.disconnect(listener.id)


def _drop_thebe_assets(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [f for f in context[key] if "thebe" not in str(getattr(f, "filename", f) or "")]


def setup(app):
    _unhook_thebe(app)  # runs after Jupyter Book's extensions, sphinx-thebe among them, are set up
    app.connect("html-page-context", _drop_thebe_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
