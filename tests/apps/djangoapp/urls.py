from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

from . import settings, views

urlpatterns = [
    path("", views.index),
    path("hello/<str:name>/", views.hello),
    path("form/", views.form),
    path("admin/", admin.site.urls),
    # Served by the app itself (not only under DEBUG): Django hands the file to wsgi.file_wrapper.
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
]
