project = 'compute-hyperv-ovs'
copyright = 'compute-hyperv-ovs developers'
# oslo_config.sphinxext: the show-options directive (configuration.rst);
# oslo_config.sphinxconfiggen: the sample configuration, written by the
# oslo.config generator from the package's own generator file at every
# build, so neither the reference nor the sample is kept by hand.
extensions = ['oslo_config.sphinxext', 'oslo_config.sphinxconfiggen']
config_generator_config_file = [(
    '../../etc/compute-hyperv-ovs/compute-hyperv-ovs-config-generator.conf',
    '_static/compute-hyperv-ovs')]
master_doc = 'index'
html_theme = 'alabaster'
exclude_patterns = []
