project = 'compute-hyperv-ovs release notes'
extensions = ['reno.sphinxext']
master_doc = 'index'
html_theme = 'alabaster'
