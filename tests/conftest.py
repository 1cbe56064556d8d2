import pytest


@pytest.fixture(scope="session")
def rules():
    """The installed torch's weights_only rules (imports torch)."""
    from pytest_ckptcompat.rules import TorchRules

    return TorchRules.from_installed()
