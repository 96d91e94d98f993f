from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from demoapp.models import Widget
from demoapp.tasks import rename_widget


# "First steps with Django": trigger tasks at the end of the database transaction.
@csrf_exempt
@transaction.atomic
def create_widget(request):
    widget = Widget.objects.create(name=request.POST["name"])
    rename_widget.delay_on_commit(widget.id, request.POST["rename_to"])
    return JsonResponse({"id": widget.id})
