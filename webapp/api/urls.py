urlpatterns: list = []  # the API's routes are mounted here
