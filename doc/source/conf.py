project = 'compute-hyperv-ovs'
copyright = 'compute-hyperv-ovs developers'
extensions = ['oslo_config.sphinxext']
master_doc = 'index'
html_theme = 'alabaster'
exclude_patterns = []
