"""Write tempest.conf for one target of the all-in-one cloud.

Run by ``tools/tempest/tempest`` with the cloud's virtualenv (openstacksdk)
and OS_CLIENT_CONFIG_FILE pointing at the cloud's clouds.yaml::

  write_conf.py TARGET WORKSPACE NOVA_CONF

TARGET is ``hyperv`` (servers on hv1/hv2) or ``kvm`` (servers on kvm1).
The file is ``common.conf.in`` plus ``TARGET.conf.in`` of this directory
with their ``@NAME@`` fields filled in from the running cloud; the
resources tempest needs beyond what ``cloud up`` registered (two flavors
and a shared network for classes that make no network of their own) are
created here if they do not exist yet.  Written to WORKSPACE/etc/tempest.conf.
"""

import configparser
import os
import re
import sys

import openstack

ADMIN = 'hyperv-ovs-admin'
HERE = os.path.dirname(os.path.abspath(__file__))

# Two flavors for both targets; the alternative is larger in every
# dimension (tempest resizes from flavor_ref to flavor_ref_alt).  The
# images of tools/cloud are 512 MiB disks, so 1 GB roots hold them.
FLAVORS = {
    'tempest.small': {'vcpus': 1, 'ram': 128, 'disk': 1},
    'tempest.alt': {'vcpus': 2, 'ram': 192, 'disk': 2},
}
SHARED_NETWORK = 'tempest-shared'
SHARED_CIDR = '10.99.0.0/24'

# Images registered by tools/cloud/setup_cloud.py, per target: image_ref,
# image_ref_alt.  The Hyper-V pair mixes generations (VHDX generation 2 and
# VHD generation 1), so a rebuild also changes the VM's generation.
IMAGES = {
    'hyperv': ('hyperv-gen2', 'hyperv-gen1'),
    'kvm': ('kvm-halt', 'kvm-halt'),
}


def _flavor(conn, name):
    flavor = conn.compute.find_flavor(name)
    if flavor is None:
        flavor = conn.compute.create_flavor(name=name, is_public=True,
                                            **FLAVORS[name])
    return flavor.id


def _shared_network(conn):
    net = conn.network.find_network(SHARED_NETWORK)
    if net is None:
        net = conn.network.create_network(name=SHARED_NETWORK, shared=True)
        conn.network.create_subnet(network_id=net.id, ip_version=4,
                                   cidr=SHARED_CIDR, name=SHARED_NETWORK)
    return net.name


def _image(conn, name):
    image = conn.image.find_image(name)
    if image is None:
        raise SystemExit('image %s not found: was the cloud brought up by '
                         'tools/cloud/cloud up?' % name)
    return image.id


def _scheduler_filters(nova_conf):
    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.read(nova_conf)
    return cp.get('filter_scheduler', 'enabled_filters')


def fields(conn, target, workspace, nova_conf):
    auth = conn.config.get_auth_args()
    image, image_alt = IMAGES[target]
    extensions = sorted(e.alias for e in conn.network.extensions())
    return {
        'WORKSPACE': workspace,
        'ADMIN_USERNAME': auth['username'],
        'ADMIN_PASSWORD': auth['password'],
        'ADMIN_PROJECT': auth['project_name'],
        'KEYSTONE_URL': auth['auth_url'],
        'NETWORK_EXTENSIONS': ','.join(extensions),
        'IMAGE_REF': _image(conn, image),
        'IMAGE_REF_ALT': _image(conn, image_alt),
        'FLAVOR_REF': _flavor(conn, 'tempest.small'),
        'FLAVOR_REF_ALT': _flavor(conn, 'tempest.alt'),
        'FIXED_NETWORK': _shared_network(conn),
        'SCHEDULER_FILTERS': _scheduler_filters(nova_conf),
    }


def render(target, values):
    text = ''
    for name in ('common.conf.in', '%s.conf.in' % target):
        with open(os.path.join(HERE, name)) as f:
            text += f.read()

    def fill(match):
        return str(values[match.group(1)])
    return re.sub(r'@([A-Z_]+)@', fill, text)


def main(argv):
    if len(argv) != 4 or argv[1] not in IMAGES:
        print(__doc__)
        return 2
    target, workspace, nova_conf = argv[1], os.path.abspath(argv[2]), argv[3]
    conn = openstack.connect(cloud=ADMIN)
    text = render(target, fields(conn, target, workspace, nova_conf))
    os.makedirs(os.path.join(workspace, 'etc'), exist_ok=True)
    path = os.path.join(workspace, 'etc', 'tempest.conf')
    with open(path, 'w') as f:
        f.write(text)
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
