from django import forms
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render


def index(request):
    return HttpResponse("hello from django", content_type="text/plain")


def hello(request, name):
    return JsonResponse({"name": name, "path": request.path, "query": request.GET.dict()})


class NameForm(forms.Form):
    name = forms.CharField(max_length=50)
    count = forms.IntegerField(min_value=1)


def form(request):
    if request.method == "POST":
        bound = NameForm(request.POST)
        if bound.is_valid():
            return JsonResponse({"ok": True, **bound.cleaned_data})
        return JsonResponse({"ok": False, "errors": bound.errors}, status=400)
    return render(request, "form.html", {"form": NameForm()})
