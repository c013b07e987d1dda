// The DevTools page: adds the ccmem panel to the inspected page's DevTools.
chrome.devtools.panels.create('ccmem memory', '', 'panel.html');
