from odoo.tests import TransactionCase, tagged

from odoo.addons.iap_sidecar.tools import iap_provider

from .. import iap_provider as imported_by_the_module


@tagged("post_install", "-at_install")
class TestProviderImport(TransactionCase):
    def test_the_helper_is_importable_by_a_dependent_module(self):
        self.assertIs(imported_by_the_module, iap_provider)
        for name in ("iap_authorize", "iap_capture", "iap_cancel", "iap_charge"):
            self.assertTrue(callable(getattr(iap_provider, name)), name)
        self.assertEqual(
            self.env["ir.module.module"]
            .search([("name", "=", "iap_sidecar_provider_example")])
            .state,
            "installed",
        )
