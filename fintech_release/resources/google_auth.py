"""Google access tokens from Application Default Credentials, with one clear error when there are none.

google-auth finds the credentials: `gcloud auth application-default login` on a workstation,
GOOGLE_APPLICATION_CREDENTIALS, or the metadata server where a service account is attached (GKE
Workload Identity, Cloud Build, Compute Engine). No key file is ever read from the repository.
"""

from __future__ import annotations

from fintech_release.errors import ExternalSystemError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ADC_HINT = (
    "run `gcloud auth application-default login`, or run where a service account is attached "
    "(GKE Workload Identity, Cloud Build, Compute Engine)"
)


def google_access_token(purpose: str) -> str:
    """A fresh OAuth 2.0 access token for the cloud-platform scope; `ExternalSystemError` naming `purpose` if none."""
    # Imported here: every registry resource imports this module, and only Google's registries need google-auth.
    import google.auth
    import google.auth.transport.requests
    from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        credentials.refresh(google.auth.transport.requests.Request())
    except DefaultCredentialsError as error:
        raise ExternalSystemError(f"{purpose}: no usable Google credentials ({error}); {ADC_HINT}") from None
    except (RefreshError, TransportError) as error:
        raise ExternalSystemError(
            f"{purpose}: the Google credentials could not be turned into an access token ({error}); {ADC_HINT}"
        ) from None
    return str(credentials.token)
