"""A Flask application for the end-to-end WSGI tests: routing, JSON, forms, uploads, streaming, files.

$EHTTPD_TEST_FILE names the large file /download sends with send_file (through wsgi.file_wrapper).
`create_app()` is the factory form (`ehttpd flask_app:create_app()`).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading

from flask import Flask, Response, jsonify, request, send_file, stream_with_context

FILE = os.environ.get("EHTTPD_TEST_FILE", "")


class CountingFile(io.FileIO):
    """A file that counts the reads Python makes of it: 0 when the server sends it with os.sendfile."""

    reads = 0
    lock = threading.Lock()

    def _count(self) -> None:
        with CountingFile.lock:
            CountingFile.reads += 1

    def read(self, *args):
        self._count()
        return super().read(*args)

    def readinto(self, buffer):
        self._count()
        return super().readinto(buffer)

    def readall(self):
        self._count()
        return super().readall()


def create_app(name: str = "flask-test") -> Flask:
    app = Flask(name)

    @app.get("/")
    def index():
        return "hello from flask"

    @app.get("/user/<name>/<int:number>")
    def user(name: str, number: int):
        return jsonify(name=name, number=number, args=request.args.to_dict(flat=False))

    @app.post("/json")
    def echo_json():
        data = request.get_json()
        return jsonify(received=data, type=request.content_type)

    @app.post("/form")
    def form():
        return jsonify(form=request.form.to_dict(flat=False))

    @app.post("/upload")
    def upload():
        """A multipart upload; the file part is hashed as werkzeug streams it from wsgi.input."""
        upload = request.files["file"]
        digest = hashlib.sha256()
        size = 0
        while chunk := upload.stream.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        return jsonify(name=upload.filename, size=size, sha256=digest.hexdigest(), note=request.form["note"])

    @app.post("/raw")
    def raw():
        """The body as a stream (chunked uploads too)."""
        digest = hashlib.sha256()
        size = 0
        while chunk := request.stream.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        return jsonify(size=size, sha256=digest.hexdigest())

    @app.get("/generate")
    def generate():
        count = request.args.get("n", 5, type=int)

        def lines():
            for i in range(count):
                yield f"line {i} of {request.path}\n"

        return Response(stream_with_context(lines()), mimetype="text/plain")

    @app.get("/download")
    def download():
        return send_file(FILE, mimetype="application/octet-stream")

    @app.get("/download-counted")
    def download_counted():
        return send_file(CountingFile(FILE), mimetype="application/octet-stream")

    @app.get("/reads")
    def reads():
        return jsonify(reads=CountingFile.reads)

    @app.get("/boom")
    def boom():
        raise RuntimeError("flask view failed")

    @app.errorhandler(500)
    def server_error(error):
        return jsonify(error="custom 500 handler", original=str(error.original_exception)), 500

    return app


app = create_app()
