"""Organizations, members and the audit log: request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from api.events.schemas import storable
from evently.bank_transfer import bank_details, iban_valid, normalize_iban
from evently.db.models import AuditEntry, Organization, OrganizationMember
from evently.enums import OrganizationRole

_STRICT = ConfigDict(extra="forbid")
OrgName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(storable),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=320),
    AfterValidator(storable),
]


class OrganizationCreate(BaseModel):
    model_config = _STRICT

    name: OrgName
    owner_email: Email = Field(description="an existing account: the first owner")


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=0, max_length=max_length)


LegalName = Annotated[str, _text(200), AfterValidator(storable)]
LegalAddress = Annotated[str, _text(400), AfterValidator(storable)]
VatId = Annotated[str, _text(40), AfterValidator(storable)]


class OrganizationPatch(BaseModel):
    """Any of: the name; the legal details printed on its invoices (issue 31)."""

    model_config = _STRICT

    name: OrgName | None = None
    legal_name: LegalName | None = None
    legal_address: LegalAddress | None = None
    vat_id: VatId | None = None
    invoice_prefix: (
        Annotated[  # the invoices' numbers: {prefix}-{year}-{n}
            str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _something(self) -> OrganizationPatch:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        nulls = sorted(k for k in self.model_fields_set if getattr(self, k) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null (leave the field out instead)")
        return self


def _iban(value: str) -> str:
    if not iban_valid(value):
        raise ValueError("not a valid IBAN (ISO 13616: country, check digits, mod 97)")
    return normalize_iban(value)


class BankAccountIn(BaseModel):
    """Where buyers paying by bank transfer send the money (issue 29)."""

    model_config = _STRICT

    account_holder: OrgName
    iban: Annotated[str, StringConstraints(min_length=15, max_length=42), AfterValidator(_iban)]
    bic: (
        Annotated[str, StringConstraints(pattern=r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")] | None
    ) = None


class BankAccountOut(BaseModel):
    account_holder: str
    iban: str
    bic: str | None = None


class OrganizationOut(BaseModel):
    id: uuid.UUID
    name: str
    is_default: bool
    created_at: datetime
    role: OrganizationRole | None = Field(
        None, description="the caller's role (null for the platform admin)"
    )
    bank_account: BankAccountOut | None = Field(
        None, description="for payments by bank transfer (null: none set)"
    )
    # issue 31: printed on its invoices
    legal_name: str = ""
    legal_address: str = ""
    vat_id: str = ""
    invoice_prefix: str = "INV"

    @classmethod
    def of(cls, org: Organization, role: str | None) -> OrganizationOut:
        return cls(
            id=org.id,
            name=org.name,
            is_default=org.is_default,
            created_at=org.created_at,
            role=OrganizationRole(role) if role else None,
            bank_account=_bank_account(org),
            legal_name=org.legal_name,
            legal_address=org.legal_address,
            vat_id=org.vat_id,
            invoice_prefix=org.invoice_prefix,
        )


def _bank_account(org: Organization) -> BankAccountOut | None:
    found = bank_details(org)
    if found is None:
        return None
    return BankAccountOut(account_holder=found.account_holder, iban=found.iban, bic=found.bic)


class OrganizationPage(BaseModel):
    items: list[OrganizationOut]
    total: int
    page: int
    limit: int


class MemberCreate(BaseModel):
    model_config = _STRICT

    email: Email = Field(description="an existing account")
    role: OrganizationRole


class MemberPatch(BaseModel):
    model_config = _STRICT

    role: OrganizationRole


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: OrganizationRole
    added_by: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, m: OrganizationMember) -> MemberOut:
        return cls(
            user_id=m.user_id,
            email=m.user.email,
            full_name=m.user.full_name,
            role=OrganizationRole(m.role),
            added_by=m.added_by,
            created_at=m.created_at,
        )


class MemberPage(BaseModel):
    items: list[MemberOut]
    total: int
    page: int
    limit: int


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    actor: str = Field(description="user:<id> (a member), admin:<id>, system:<what>")
    actor_user_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls.model_validate(entry)


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    page: int
    limit: int
