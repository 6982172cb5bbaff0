{
    "name": "IAP Sidecar provider example (test)",
    "summary": "A provider module depending on iap_sidecar: CI installs it on every series",
    "version": "1.0.0",
    "category": "Hidden/Tests",
    "author": "iap-sidecar",
    "license": "LGPL-3",
    "depends": ["iap_sidecar"],
    "data": [],
}
