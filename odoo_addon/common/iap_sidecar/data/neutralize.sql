-- A neutralized copy must not act on the original database's sidecar connection.
DELETE FROM ir_config_parameter
WHERE key IN (
    'iap_sidecar.connected_url',
    'iap_sidecar.database_token',
    'iap_sidecar.dbuuid',
    'iap_sidecar.previous_endpoint',
    'iap_sidecar.previous_sms_endpoint',
    'iap_sidecar.api_key_id',
    'iap_sidecar.connected_at',
    'iap_sidecar.summary',
    'iap_sidecar.registration_secret'
);
