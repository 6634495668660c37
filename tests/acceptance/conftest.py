def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'acceptance: black-box suites run through the shared '
                   'acceptance harness (Tempest); minutes, not seconds')
