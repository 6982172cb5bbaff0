from . import test_provider_import
