from django.urls import path

from webapp.cluster import views

urlpatterns = [
    path("cluster/", views.cluster_page, name="cluster"),
]
