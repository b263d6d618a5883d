from django.contrib.auth import views as auth_views
from django.urls import path

from webapp.accounts import team_views, token_views, views

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(success_url="/accounts/password/done/"),
        name="password_change",
    ),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("teams/", team_views.team_list, name="team_list"),
    path("teams/<slug:slug>/", team_views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/invite/", team_views.team_invite_view, name="team_invite"),
    path("teams/<slug:slug>/members/<id:user_id>/role/", team_views.team_role_view, name="team_role"),
    path("teams/<slug:slug>/members/<id:user_id>/remove/", team_views.team_remove_view, name="team_remove"),
    path("teams/<slug:slug>/invitations/<id:user_id>/revoke/", team_views.team_revoke_view, name="team_revoke"),
    path("invitations/", team_views.invitation_list, name="invitation_list"),
    path("invitations/<slug:slug>/accept/", team_views.invitation_accept_view, name="invitation_accept"),
    path("invitations/<slug:slug>/decline/", team_views.invitation_decline_view, name="invitation_decline"),
    path("tokens/", token_views.token_list, name="token_list"),
    path("tokens/<id:token_id>/revoke/", token_views.token_revoke_view, name="token_revoke"),
]
