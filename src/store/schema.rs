// Table definitions matching migrations/{sqlite,postgres}: the same columns on both.

diesel::table! {
    services (id) {
        id -> BigInt,
        technical_name -> Text,
        label -> Text,
        unit_name -> Text,
        integer_balance -> Bool,
        key_hash -> Text,
        trial_credits -> BigInt,
        trial_days -> Integer,
        created_at -> BigInt,
        open_to_all -> Bool,
    }
}

diesel::table! {
    accounts (id) {
        id -> BigInt,
        service_id -> BigInt,
        token_hash -> Text,
        token_hint -> Text,
        dbuuid -> Nullable<Text>,
        state -> Text,
        disabled -> Bool,
        balance -> BigInt,
        reserved -> BigInt,
        last_seq -> BigInt,
        lock_version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        warning_threshold -> BigInt,
        warn_me -> Bool,
        warning_emails -> Text,
        alert_armed -> Bool,
    }
}

diesel::table! {
    alert_outbox (id) {
        id -> BigInt,
        account_id -> BigInt,
        recipient -> Text,
        lang_code -> Nullable<Text>,
        available -> BigInt,
        threshold -> BigInt,
        created_at -> BigInt,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_until -> BigInt,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    lots (id) {
        id -> BigInt,
        account_id -> BigInt,
        amount -> BigInt,
        remaining -> BigInt,
        expires_at -> BigInt,
        origin -> Text,
        reference -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    holds (id) {
        id -> BigInt,
        account_id -> BigInt,
        token_hash -> Text,
        amount -> BigInt,
        status -> Text,
        captured -> Nullable<BigInt>,
        description -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    hold_allocations (hold_id, lot_id) {
        hold_id -> BigInt,
        lot_id -> BigInt,
        amount -> BigInt,
    }
}

diesel::table! {
    journal (id) {
        id -> BigInt,
        account_id -> BigInt,
        seq -> BigInt,
        kind -> Text,
        amount -> BigInt,
        balance_after -> BigInt,
        hold_id -> Nullable<BigInt>,
        lot_id -> Nullable<BigInt>,
        description -> Nullable<Text>,
        effective_at -> BigInt,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    admin_tokens (id) {
        id -> BigInt,
        name -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        response -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    service_databases (service_id, dbuuid) {
        service_id -> BigInt,
        dbuuid -> Text,
    }
}

diesel::table! {
    trial_grants (service_id, dbuuid) {
        service_id -> BigInt,
        dbuuid -> Text,
        account_id -> BigInt,
        granted_at -> BigInt,
        legacy_extra -> Bool,
    }
}

diesel::joinable!(accounts -> services (service_id));
diesel::joinable!(alert_outbox -> accounts (account_id));
diesel::joinable!(lots -> accounts (account_id));
diesel::joinable!(holds -> accounts (account_id));
diesel::joinable!(journal -> accounts (account_id));

diesel::allow_tables_to_appear_in_same_query!(
    services,
    accounts,
    lots,
    holds,
    hold_allocations,
    journal,
    admin_tokens,
    idempotency_keys,
    service_databases,
    trial_grants,
    alert_outbox,
    registration_secrets,
    odoo_databases,
    odoo_companies,
    odoo_accounts,
    packs,
    orders,
    payment_events,
    portal_secrets,
    portal_revoked_sessions,
    sms_messages,
    sms_reports,
    sms_registrations,
);

diesel::table! {
    registration_secrets (id) {
        id -> BigInt,
        name -> Text,
        secret_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        dbuuids -> Nullable<Text>,
    }
}

diesel::table! {
    odoo_databases (id) {
        id -> BigInt,
        dbuuid -> Text,
        url -> Text,
        db_name -> Text,
        login -> Text,
        api_key -> Text,
        token_hash -> Text,
        registered_at -> BigInt,
        refreshed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        protocol -> Text,
    }
}

diesel::table! {
    odoo_companies (database_id, company_id) {
        database_id -> BigInt,
        company_id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    odoo_accounts (database_id, iap_account_id) {
        database_id -> BigInt,
        iap_account_id -> BigInt,
        service_name -> Text,
        token_hash -> Text,
        company_ids -> Text,
        restricted_since -> Nullable<BigInt>,
    }
}

diesel::joinable!(odoo_companies -> odoo_databases (database_id));
diesel::joinable!(odoo_accounts -> odoo_databases (database_id));

// The portal (migration 2026-11-29-000004_portal).

diesel::table! {
    packs (id) {
        id -> BigInt,
        service_id -> BigInt,
        name -> Text,
        credits -> BigInt,
        price_minor -> BigInt,
        currency -> Text,
        active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        account_id -> BigInt,
        pack_id -> BigInt,
        pack_name -> Text,
        credits -> BigInt,
        price_minor -> BigInt,
        currency -> Text,
        status -> Text,
        created_at -> BigInt,
        paid_at -> Nullable<BigInt>,
        credited_at -> Nullable<BigInt>,
        cancelled_at -> Nullable<BigInt>,
        lot_id -> Nullable<BigInt>,
        confirmed_by -> Nullable<Text>,
        payment_reference -> Nullable<Text>,
        dbuuid -> Nullable<Text>,
    }
}

diesel::table! {
    payment_events (event_id) {
        event_id -> Text,
        body_hash -> Text,
        kind -> Text,
        order_id -> BigInt,
        received_at -> BigInt,
    }
}

diesel::table! {
    portal_revoked_sessions (nonce) {
        nonce -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    portal_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(packs -> services (service_id));
diesel::joinable!(orders -> accounts (account_id));
diesel::joinable!(orders -> packs (pack_id));
diesel::joinable!(payment_events -> orders (order_id));

diesel::table! {
    sms_messages (id) {
        id -> BigInt,
        account_id -> BigInt,
        kind -> Text,
        uuid -> Text,
        number -> Text,
        content -> Text,
        encoding -> Text,
        segments -> Integer,
        country -> Text,
        price -> BigInt,
        hold_key -> Nullable<Text>,
        sender -> Nullable<Text>,
        dbuuid -> Nullable<Text>,
        webhook_url -> Nullable<Text>,
        status -> Text,
        failure -> Nullable<Text>,
        refunded -> Bool,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_until -> BigInt,
        give_up_at -> BigInt,
        last_error -> Nullable<Text>,
        gateway -> Nullable<Text>,
        gateway_ref -> Nullable<Text>,
        created_at -> BigInt,
        submitted_at -> Nullable<BigInt>,
        done_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sms_reports (id) {
        id -> BigInt,
        message_id -> BigInt,
        webhook_url -> Text,
        dbuuid -> Nullable<Text>,
        uuid -> Text,
        sms_status -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_until -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sms_registrations (account_id) {
        account_id -> BigInt,
        phone -> Nullable<Text>,
        code_hash -> Nullable<Text>,
        code_expires_at -> Nullable<BigInt>,
        failed_attempts -> Integer,
        codes_sent -> Integer,
        codes_window_start -> BigInt,
        verified_at -> Nullable<BigInt>,
        sender_name -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::joinable!(sms_messages -> accounts (account_id));
diesel::joinable!(sms_reports -> sms_messages (message_id));
diesel::joinable!(sms_registrations -> accounts (account_id));

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Text,
        token_id -> BigInt,
        csrf_nonce -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        ended_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
    }
}

diesel::table! {
    daily_totals (day, service_id, kind) {
        day -> BigInt,
        service_id -> BigInt,
        kind -> Text,
        amount -> BigInt,
        entries -> BigInt,
    }
}

diesel::table! {
    daily_totals_state (id) {
        id -> Integer,
        closed_before -> BigInt,
    }
}

diesel::joinable!(console_sessions -> admin_tokens (token_id));

diesel::allow_tables_to_appear_in_same_query!(console_sessions, admin_tokens);
