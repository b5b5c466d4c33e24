"""COM port pipes as the image chooses them, through nova's API.

compute-hyperv's image properties ``interactive_serial_port`` and
``logging_serial_port`` (nova 34 has no field for them; the driver reads
them from the instance's system metadata) decide which COM port gets the
read-write pipe and which the read-only, logged one.  The simulated guest
prints its boot messages on COM1.
"""

from tests.functional import test_console


class SerialPortsTest(test_console.ConsoleTestBase):

    def boot_with(self, expected_state='ACTIVE', **properties):
        image = self.images.create_image('vhdx', properties=properties)
        server, _port = self.boot(image, expected_state=expected_state)
        return server

    def pipes(self, server):
        return dict(self.vm_of(server).serial_ports)

    def test_default_is_com1_read_write_and_logged(self):
        server = self.boot_with()

        self.assertEqual({1: r'\\.\pipe\%s_rw' % server['id'], 2: None},
                         self.pipes(server))
        self.wait_for_console(server, self.boot_lines(server, 1)[0])

    def test_logging_port_on_com1_interactive_on_com2(self):
        # Only interactive_serial_port set: logging stays on COM1, the
        # guest's console, which keeps filling the console log.
        server = self.boot_with(interactive_serial_port='2')

        self.assertEqual({1: r'\\.\pipe\%s_ro' % server['id'],
                          2: r'\\.\pipe\%s_rw' % server['id']},
                         self.pipes(server))
        self.wait_for_console(server, self.boot_lines(server, 1)[0])

    def test_logging_on_com2_leaves_com1_interactive(self):
        server = self.boot_with(logging_serial_port='2')

        self.assertEqual({1: r'\\.\pipe\%s_rw' % server['id'],
                          2: r'\\.\pipe\%s_ro' % server['id']},
                         self.pipes(server))

    def test_invalid_port_aborts_the_build_before_any_vm(self):
        for prop, value in (('logging_serial_port', '3'),
                            ('interactive_serial_port', 'com2')):
            server = self.boot_with(expected_state='ERROR',
                                    **{prop: value})

            self.assertIn('Image property %s=%s: a Hyper-V VM has COM1 '
                          'and COM2 only; set it to 1 or 2' % (prop, value),
                          server['fault']['message'])
            self.assertIsNone(self.vm_of(server, 'host1'))
