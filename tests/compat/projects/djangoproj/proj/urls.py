from demoapp import views
from django.urls import path

urlpatterns = [
    path("widgets/", views.create_widget),
]
