"""IG specification.md "Discovery" and the CapabilityStatement ``smart-imaging-server`` (capability.fsh),
as the imaging server publishes them for its tenants."""

from __future__ import annotations

import httpx
import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from .world import World

pytestmark = pytest.mark.integration
IG = "http://fhir.org/argonaut/smart-imaging"
APP_LAUNCH = f"{IG}/capabilities/app-launch"
BACKEND = f"{IG}/capabilities/backend-services"


def smart_configuration(world: World, tenant: str) -> dict:
    response = httpx.get(f"{world.base}/{tenant}/fhir/.well-known/smart-configuration", timeout=10)
    assert response.status_code == 200
    return dict(response.json())


def metadata(world: World, tenant: str) -> dict:
    statement = httpx.get(f"{world.base}/{tenant}/fhir/metadata", timeout=10).json()
    CapabilityStatement.model_validate(statement)
    return dict(statement)


def test_D2_D3_the_imaging_endpoint_advertises_smart_imaging_access_and_app_launch(world: World) -> None:
    for tenant in ("hospital", "plain"):
        config = smart_configuration(world, tenant)
        (entry,) = config["associated_endpoints"]
        assert entry["url"] == f"{world.base}/{tenant}/fhir"
        assert {"smart-imaging-access", APP_LAUNCH} <= set(entry["capabilities"])
        assert {"smart-imaging-access", APP_LAUNCH} <= set(config["capabilities"])


def test_D4_authorization_code_and_the_authorization_server_s_endpoints(world: World) -> None:
    config = smart_configuration(world, "plain")
    assert "authorization_code" in config["grant_types_supported"]
    assert config["issuer"] == world.oidc.issuer
    assert config["token_endpoint"] == f"{world.oidc.issuer}/token"
    assert config["introspection_endpoint"].startswith(world.oidc.issuer)
    assert "patient/ImagingStudy.rs" in config["scopes_supported"]


def test_D5_D6_D7_backend_services_is_advertised_with_client_credentials_and_asymmetric_auth(
    world: World,
) -> None:
    config = smart_configuration(world, "hospital")
    assert BACKEND in config["capabilities"] and BACKEND in config["associated_endpoints"][0]["capabilities"]
    assert "client_credentials" in config["grant_types_supported"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert {"ES384", "RS384"} & set(config["token_endpoint_auth_signing_alg_values_supported"])
    assert "system/ImagingStudy.rs" in config["scopes_supported"]


def test_D8_a_tenant_without_backend_clients_does_not_claim_the_backend_services_mode(world: World) -> None:
    """ "Support for a grant type alone does not establish support for that mode": the AS offers
    client_credentials, yet ``plain`` registers no backend client."""
    config = smart_configuration(world, "plain")
    assert BACKEND not in config["capabilities"]
    assert BACKEND not in config["associated_endpoints"][0]["capabilities"]
    assert "system/ImagingStudy.rs" not in config["scopes_supported"]


def test_K1_K2_the_capability_statement_instantiates_the_ig_and_names_its_profile(world: World) -> None:
    statement = metadata(world, "hospital")
    assert statement["instantiates"] == [f"{IG}/CapabilityStatement/smart-imaging-server"]
    assert statement["kind"] == "instance" and statement["fhirVersion"] == "4.0.1"
    (resource,) = statement["rest"][0]["resource"]
    assert resource["supportedProfile"] == [f"{IG}/StructureDefinition/smart-imaging-study"]
    assert "profile" not in resource  # not the old, wrong canonical
    assert {"search-type", "read"} == {i["code"] for i in resource["interaction"]}


def test_K3_search_parameters_include_and_where_lastUpdated_comes_from(world: World) -> None:
    def last_updated_doc(tenant: str) -> str:
        (resource,) = metadata(world, tenant)["rest"][0]["resource"]
        assert resource["searchInclude"] == ["ImagingStudy:endpoint"]
        params = {p["name"]: p for p in resource["searchParam"]}
        assert {"patient", "identifier", "_lastUpdated"} <= set(params)
        return str(params["_lastUpdated"]["documentation"])

    assert "last-update time" in last_updated_doc("hospital")  # Orthanc's LastUpdate
    assert "no modification time" in last_updated_doc("plain")  # said so, not hidden


def test_K4_the_security_section_states_the_modes_binding_and_lifetime(world: World) -> None:
    security = metadata(world, "hospital")["rest"][0]["security"]
    description = security["description"]
    assert "Backend Services" in description and "bound to the access token" in description
    assert "expires" in description
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert "Backend Services" not in metadata(world, "plain")["rest"][0]["security"]["description"]
