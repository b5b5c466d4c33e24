"""COM port pipes from the image's serial port properties, on spawn."""

from compute_hyperv_ovs import exception
from tests.unit.hyperv import core_host


class SerialPortsTestCase(core_host.CoreSpawnTestBase):

    def spawn_with(self, **properties):
        image_id = self.add_image('vhdx')
        instance = self.instance(image_id, 'vhdx')
        # nova-api keeps every image property in the system metadata;
        # nova's ImageMeta has no field for these two.
        for name, value in properties.items():
            instance.system_metadata['image_' + name] = value
        return instance, self.spawn(instance)

    def pipe(self, instance, kind):
        return r'\\.\pipe\%s_%s' % (instance.uuid, kind)

    def test_each_layout(self):
        for props, expected in (
                ({}, {1: 'rw', 2: None}),
                ({'logging_serial_port': '1'}, {1: 'rw', 2: None}),
                ({'logging_serial_port': '2'}, {1: 'rw', 2: 'ro'}),
                ({'interactive_serial_port': '2'}, {1: 'ro', 2: 'rw'}),
                ({'interactive_serial_port': '2',
                  'logging_serial_port': '2'}, {1: None, 2: 'rw'}),
                ({'interactive_serial_port': ' 1 ',
                  'logging_serial_port': '2'}, {1: 'rw', 2: 'ro'})):
            instance, vm = self.spawn_with(**props)
            self.assertEqual(
                {port: kind and self.pipe(instance, kind)
                 for port, kind in expected.items()},
                dict(vm.serial_ports), props)
            self.vmops.destroy(instance, [], None)

    def test_invalid_values_refused_before_anything_is_created(self):
        for name in ('interactive_serial_port', 'logging_serial_port'):
            for value in ('0', '3', 'COM1', '1.5'):
                exc = self.assertRaises(exception.ImageSerialPortInvalid,
                                        self.spawn_with, **{name: value})
                self.assertIn('%s=%s' % (name, value), exc.format_message())
                self.assertEqual({}, dict(self.sim.vms))
