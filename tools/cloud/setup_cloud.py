"""Registrations of the all-in-one cloud, through openstacksdk.

Run by ``tools/cloud/cloud up`` with the cloud's virtualenv, with
OS_CLIENT_CONFIG_FILE pointing at the cloud's clouds.yaml:

  setup_cloud.py identity            projects, users, roles, catalog
  setup_cloud.py wait-hosts T H...   wait (T s) until every host's agent is
                                     alive and its nova-compute is up;
                                     prints what is missing on failure
  setup_cloud.py resources DIR       availability zones, flavor, images

One process for all of a step: an ``openstack`` command per call would
cost a Python start-up and a token each.
"""

import os
import sys
import time

import openstack

ADMIN = 'hyperv-ovs-admin'
SERVICES = {
    # name: (type, port, path)
    'glance': ('image', 59292, ''),
    'placement': ('placement', 58778, ''),
    'nova': ('compute', 58774, '/v2.1'),
    'neutron': ('network', 59696, ''),
    # Block storage v3 (the type nova's [cinder] catalog_info and tempest
    # look up); no project id in the URL, as cinder has accepted since
    # its microversion 3.67 and devstack registers it.
    'cinder': ('volumev3', 58776, '/v3'),
}
SERVICE_PASSWORD = 'cloud-service'
DEMO_PASSWORD = 'cloud-demo'
AZ = {'hyperv': ['hv1', 'hv2'], 'kvm': ['kvm1']}
FLAVOR = {'name': 'cloud.small', 'vcpus': 1, 'ram': 128, 'disk': 1}
IMAGES = [
    # name, file, disk_format, properties
    ('hyperv-gen2', 'hyperv-gen2.vhdx', 'vhdx',
     {'hypervisor_type': 'hyperv', 'hw_machine_type': 'hyperv-gen2'}),
    ('hyperv-gen1', 'hyperv-gen1.vhd', 'vhd',
     {'hypervisor_type': 'hyperv', 'hw_machine_type': 'hyperv-gen1'}),
    # Its boot sector halts the CPU and never answers the ACPI power
    # button, so nova would wait shutdown_timeout (60 s) on every stop,
    # rebuild and shelve before turning it off.  Nor would it answer a
    # PCI hot-unplug request, which a virtio-blk disk's detach waits for
    # (nova retries it, then gives up and the volume stays in-use): its
    # disks sit on a virtio-scsi controller instead, where QEMU removes a
    # disk without asking the guest, so Cinder volumes detach live.
    ('kvm-halt', 'halt.qcow2', 'qcow2',
     {'hypervisor_type': 'qemu', 'os_shutdown_timeout': '0',
      'hw_disk_bus': 'scsi', 'hw_scsi_model': 'virtio-scsi'}),
]


def identity(conn):
    idc = conn.identity
    service_project = idc.create_project(name='service', domain_id='default')
    demo = idc.create_project(name='demo', domain_id='default')
    admin_role = idc.find_role('admin')
    member_role = idc.find_role('member')
    # keystone's bootstrap makes the 'service' role.  nova 34 sends a
    # service token beside the user's on its calls to neutron, and
    # keystonemiddleware (service_token_roles_required, now True by
    # default) rejects the request with 401 unless that token has a role
    # in service_token_roles (['service']).
    service_role = idc.find_role('service')
    admin_user = idc.find_user('admin')
    idc.assign_project_role_to_user(demo, admin_user, admin_role)
    demo_user = idc.create_user(name='demo', password=DEMO_PASSWORD,
                                default_project_id=demo.id,
                                domain_id='default')
    idc.assign_project_role_to_user(demo, demo_user, member_role)
    for name, (stype, port, path) in SERVICES.items():
        user = idc.create_user(name=name, password=SERVICE_PASSWORD,
                               domain_id='default')
        idc.assign_project_role_to_user(service_project, user, admin_role)
        idc.assign_project_role_to_user(service_project, user, service_role)
        service = idc.create_service(name=name, type=stype)
        for interface in ('public', 'internal', 'admin'):
            idc.create_endpoint(service_id=service.id, interface=interface,
                                region_id='RegionOne',
                                url='http://127.0.0.1:%d%s' % (port, path))
    print('  projects admin, demo, service; users demo and %s; catalog %s'
          % (', '.join(SERVICES), ', '.join(
              v[0] for v in SERVICES.values())))


def wait_hosts(conn, timeout, hosts):
    deadline = time.time() + timeout
    while True:
        missing = []
        try:
            agents = {a.host: a.is_alive for a in conn.network.agents(
                binary='neutron-openvswitch-agent')}
            computes = {s.host: s.state for s in conn.compute.services(
                binary='nova-compute')}
            hypervisors = {h.name for h in conn.compute.hypervisors()}
        except openstack.exceptions.SDKException as exc:
            agents, computes, hypervisors = {}, {}, set()
            print('  (API not answering yet: %s)' % exc, file=sys.stderr)
        for host in hosts:
            if not agents.get(host):
                missing.append('agent-' + host)
            if computes.get(host) != 'up':
                missing.append('compute-' + host)
        if not missing and len(hypervisors) >= len(hosts):
            return 0
        if time.time() > deadline:
            if not missing:
                missing = ['hypervisors:%s' % sorted(hypervisors)]
            print(' '.join(missing))
            return 1
        time.sleep(1)


def resources(conn, image_dir):
    for az, hosts in AZ.items():
        agg = conn.compute.create_aggregate(name=az, availability_zone=az)
        for host in hosts:
            conn.compute.add_host_to_aggregate(agg, host)
        print('  availability zone %s: %s' % (az, ', '.join(hosts)))
    flavor = conn.compute.create_flavor(is_public=True, **FLAVOR)
    print('  flavor %s: %d vCPU, %d MB, %d GB' % (
        flavor.name, flavor.vcpus, flavor.ram, flavor.disk))
    for name, filename, disk_format, props in IMAGES:
        image = conn.image.create_image(
            name=name, filename=os.path.join(image_dir, filename),
            disk_format=disk_format, container_format='bare',
            visibility='public', use_import=False, wait=True,
            allow_duplicates=True, **props)
        print('  image %s (%s, %s) %s' % (name, disk_format, props, image.id))


def main(argv):
    conn = openstack.connect(cloud=ADMIN)
    if argv[1] == 'identity':
        identity(conn)
    elif argv[1] == 'wait-hosts':
        return wait_hosts(conn, float(argv[2]), argv[3:])
    elif argv[1] == 'resources':
        resources(conn, argv[2])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
